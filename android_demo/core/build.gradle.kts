// The platform-free core: plain Kotlin/JVM, no Android types. The same sources and tests are
// compiled by core/run_tests.sh with Debian's kotlinc 1.3 on CI, so keep them Kotlin 1.3 code
// (no kotlinx.serialization, no `fun interface`, no trailing commas, no 1.4+ stdlib calls).
plugins {
    alias(libs.plugins.kotlin.jvm)
}

kotlin {
    jvmToolchain(17)
}

dependencies {
    testImplementation(libs.junit)
}
