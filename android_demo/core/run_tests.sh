#!/bin/sh
# Compile the platform-free Kotlin core and its JUnit 4 tests with the plain Kotlin compiler
# (Debian's kotlin 1.3.31 + junit4; no Gradle, no Android SDK), then run every *Test class.
#
#   android_demo/core/run_tests.sh            # exit status 0 only when every test passes
#
# Environment: KOTLINC (default kotlinc), JAVA (default java), JAVA_LIBS (default
# /usr/share/java, where junit4.jar, hamcrest-core.jar and kotlin-stdlib.jar live),
# BUILD (default android_demo/core/build/jvm-tests).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
KOTLINC=${KOTLINC:-kotlinc}
JAVA=${JAVA:-java}
JAVA_LIBS=${JAVA_LIBS:-/usr/share/java}
BUILD=${BUILD:-$here/build/jvm-tests}

command -v "$KOTLINC" >/dev/null 2>&1 || {
    echo "run_tests.sh: $KOTLINC not found (apt-get install -y kotlin junit4)" >&2; exit 127; }
for jar in junit4.jar hamcrest-core.jar kotlin-stdlib.jar; do
    [ -f "$JAVA_LIBS/$jar" ] || {
        echo "run_tests.sh: $JAVA_LIBS/$jar missing (apt-get install -y kotlin junit4)" >&2; exit 127; }
done
libs="$JAVA_LIBS/junit4.jar:$JAVA_LIBS/hamcrest-core.jar"

rm -rf "$BUILD"
mkdir -p "$BUILD/classes"
# shellcheck disable=SC2046  # file names have no spaces
"$KOTLINC" -nowarn -jvm-target 1.8 -cp "$libs" -d "$BUILD/classes" \
    $(find "$here/src/main/kotlin" "$here/src/test/kotlin" -name '*.kt' | sort)

tests=$(cd "$here/src/test/kotlin" && find . -name '*Test.kt' | sed 's|^\./||; s|\.kt$||; s|/|.|g' | sort)
"$JAVA" -cp "$BUILD/classes:$here/src/test/resources:$libs:$JAVA_LIBS/kotlin-stdlib.jar" \
    org.junit.runner.JUnitCore $tests
