@rem Gradle wrapper launcher for the SegKit demo (Windows).
@rem The wrapper jar could not be fetched where this project was written; run `gradle wrapper --gradle-version 8.11.1`
@rem once in android_demo\ (Gradle 8.x installed) to regenerate the standard scripts and jar.
@echo off
setlocal
set APP_HOME=%~dp0
set JAR=%APP_HOME%gradle\wrapper\gradle-wrapper.jar
if not exist "%JAR%" (
    echo gradlew: %JAR% is missing. Run "gradle wrapper --gradle-version 8.11.1" once in %APP_HOME%, then retry. 1>&2
    exit /b 1
)
if defined JAVA_HOME (set JAVACMD=%JAVA_HOME%\bin\java.exe) else (set JAVACMD=java.exe)
"%JAVACMD%" %JAVA_OPTS% %GRADLE_OPTS% "-Dorg.gradle.appname=gradlew" -classpath "%JAR%" org.gradle.wrapper.GradleWrapperMain %*
exit /b %ERRORLEVEL%
