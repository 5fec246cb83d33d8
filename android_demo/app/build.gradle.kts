plugins {
    alias(libs.plugins.android.application)
    alias(libs.plugins.kotlin.android)
    alias(libs.plugins.kotlin.compose)
}

android {
    namespace = "dev.segkit.demo"
    compileSdk = 35

    defaultConfig {
        applicationId = "dev.segkit.demo"
        minSdk = 24
        targetSdk = 35
        versionCode = 1
        versionName = "0.1.0"
    }

    buildTypes {
        release {
            isMinifyEnabled = false
            proguardFiles(getDefaultProguardFile("proguard-android-optimize.txt"), "proguard-rules.pro")
        }
    }
    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }
    kotlinOptions {
        jvmTarget = "17"
    }
    buildFeatures {
        compose = true
    }
    // The interpreter memory-maps the model straight out of the APK, which needs it stored
    // uncompressed (the Groovy DSL's `noCompress "tflite"`).
    androidResources {
        noCompress += "tflite"
    }
}

// `make android-assets` (conversion/apps.py) puts the exported model and its
// contract here. Building without them is allowed: the app then explains what is missing.
val modelAssets = layout.projectDirectory.dir("src/main/assets")
tasks.named("preBuild") {
    doFirst {
        val models = modelAssets.asFile.listFiles { f -> f.name.endsWith(".tflite") }.orEmpty()
        if (models.isEmpty()) {
            logger.warn("warning: no .tflite in ${modelAssets.asFile}; run `make android-assets` " +
                "from the repository root first, or the app will show 'Model not found'.")
        }
    }
}

dependencies {
    implementation(project(":core"))

    implementation(libs.androidx.core.ktx)
    implementation(libs.androidx.activity.compose)
    implementation(libs.androidx.lifecycle.runtime.compose)
    implementation(libs.androidx.lifecycle.viewmodel.compose)
    implementation(platform(libs.androidx.compose.bom))
    implementation(libs.androidx.compose.ui)
    implementation(libs.androidx.compose.ui.graphics)
    implementation(libs.androidx.compose.foundation)
    implementation(libs.androidx.compose.material3)
    debugImplementation(libs.androidx.compose.ui.tooling)

    implementation(libs.androidx.camera.core)
    implementation(libs.androidx.camera.camera2)
    implementation(libs.androidx.camera.lifecycle)
    implementation(libs.androidx.camera.view)
    implementation(libs.androidx.exifinterface)
    implementation(libs.kotlinx.coroutines.android)

    implementation(libs.litert)
    implementation(libs.litert.gpu)
    implementation(libs.litert.gpu.api)
}
