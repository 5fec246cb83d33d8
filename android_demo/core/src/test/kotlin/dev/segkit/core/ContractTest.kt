package dev.segkit.core

import org.junit.Assert.assertEquals
import org.junit.Assert.assertTrue
import org.junit.Assert.fail
import org.junit.Test

class ContractTest {
    private fun problemOf(text: String): Problem = try {
        ModelContract.parse(text)
        fail("expected a ProblemException")
        throw AssertionError()
    } catch (e: ProblemException) {
        e.problem
    }

    @Test
    fun parsesShapesQuantizationNormalizationAndClasses() {
        val c = Golden.contract
        assertEquals(listOf(1, 64, 128, 3), c.input.shape)
        assertEquals(64, c.input.height)
        assertEquals(128, c.input.width)
        val norm = c.input.normalization!!
        assertEquals(false, norm.inModel)
        assertEquals(listOf(0.485, 0.456, 0.406), norm.mean)
        assertEquals(listOf(0.229, 0.224, 0.225), norm.std)
        assertEquals(c.classes.count, c.output.channels)
        assertEquals(c.classes.count, c.classes.palette.size)
        assertTrue(c.classes.palette.all { Palette.alpha(it) == 255 })
        assertEquals(255, c.classes.ignoreIndex)
        assertEquals(64, c.artifact.sha256.length)
    }

    @Test
    fun theGpuReportIsReadAndOptional() {
        assertEquals(emptyList<String>(), Golden.contract.gpuUnsupportedOps)
        val text = contractWith("\"export\": {",
            "\"export\": {\"gpu_delegate\": {\"compatible\": false, \"unsupported_ops\": [\"BROADCAST_TO\"]},")
        assertEquals(listOf("BROADCAST_TO"), ModelContract.parse(text).gpuUnsupportedOps)
    }

    @Test
    fun aNewerSchemaVersionIsRefusedWithAClearMessage() {
        val p = problemOf(contractWith("\"schema_version\": 1", "\"schema_version\": 2"))
        assertEquals(Problem.UnsupportedSchema(2, 1), p)
        assertTrue(p.message, p.message.contains("reads model contract version 1"))
        assertTrue(p.message, p.message.contains("version 2 (newer)"))
    }

    @Test
    fun anOlderSchemaVersionSaysOlder() {
        val p = problemOf(contractWith("\"schema_version\": 1", "\"schema_version\": 0"))
        assertTrue(p.message, p.message.contains("version 0 (older)"))
    }

    @Test
    fun theVersionIsCheckedBeforeAnythingElse() {
        // A future contract may rename fields; the user must hear about the version, not a field.
        val text = contractWith("\"schema_version\": 1", "\"schema_version\": 7")
            .replace("\"input\"", "\"inputs_v7\"")
        assertEquals(Problem.UnsupportedSchema(7, 1), problemOf(text))
    }

    @Test
    fun aDocumentWithoutSchemaVersionIsNotAContract() {
        val p = problemOf("{\"hello\": 1}")
        assertTrue(p is Problem.ContractUnreadable)
        assertTrue(p.message, p.message.contains("no schema_version"))
    }

    @Test
    fun brokenJsonIsReportedWithItsPosition() {
        val p = problemOf("{\"schema_version\": 1,,}")
        assertTrue(p is Problem.ContractUnreadable)
        assertTrue(p.message, p.message.contains("not valid JSON") && p.message.contains("offset"))
    }

    @Test
    fun aMissingFieldNamesItsPath() {
        val p = problemOf(contractWith("\"layout\": \"NHWC\"", "\"lay\": \"NHWC\""))
        assertTrue(p.message, p.message.contains("contract.input.layout is missing"))
    }

    @Test
    fun namesAndPaletteMustMatchTheClassCount() {
        val count = Golden.contract.classes.count
        val p = problemOf(contractWith("\"num_classes\": $count", "\"num_classes\": ${count + 1}"))
        assertTrue(p.message, p.message.contains("${count + 1} classes but $count names"))
    }

    @Test
    fun logitsMustHaveAClassAxis() {
        val c = Golden.contract
        val shape = c.output.shape.joinToString(",\n      ", "[\n      ", "\n    ]")
        val text = Golden.contractText
        assertTrue("golden output shape format changed", text.contains(shape))
        val broken = text.replace(shape, "[1, 64, 128, 5]")
        val p = problemOf(broken)
        assertTrue(p.message, p.message.contains("have no axis of ${c.classes.count} classes"))
    }

    @Test
    fun unsupportedLayoutsAndDtypesAreNamed() {
        val nchw = Golden.contract.copy(input = Golden.contract.input.copy(layout = "NCHW"))
        assertTrue(unsupportedReason(nchw)!!.contains("input layout NCHW"))
        val int16 = Golden.contract.copy(input = Golden.contract.input.copy(dtype = "int16"))
        assertTrue(unsupportedReason(int16)!!.contains("input dtype int16"))
        val image = Golden.contract.copy(input = Golden.contract.input.copy(kind = "image"))
        assertTrue(unsupportedReason(image)!!.contains("kind 'image'"))
    }
}
