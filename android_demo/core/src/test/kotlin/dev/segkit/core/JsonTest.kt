package dev.segkit.core

import org.junit.Assert.assertEquals
import org.junit.Assert.assertTrue
import org.junit.Assert.fail
import org.junit.Test

class JsonTest {
    @Test
    fun readsEveryKindOfValue() {
        val v = Json.parse(" {\"a\": [1, -2, 3.5, 1e-3, -0.25E+2], \"b\": {\"c\": null, \"d\": true, " +
            "\"e\": false}, \"s\": \"x\\\"y\\\\z\\n\\u00e9\\/\", \"empty\": [], \"o\": {}} ")
        val m = v as Map<*, *>
        assertEquals(listOf(1L, -2L, 3.5, 1e-3, -25.0), m["a"])
        assertEquals(mapOf("c" to null, "d" to true, "e" to false), m["b"])
        assertEquals("x\"y\\z\n\u00e9/", m["s"])
        assertEquals(emptyList<Any>(), m["empty"])
        assertEquals(emptyMap<String, Any>(), m["o"])
    }

    @Test
    fun keepsFieldOrderAndFullDoublePrecision() {
        val m = Json.parse("{\"z\": 0.029411764815449715, \"a\": 1}") as Map<*, *>
        assertEquals(listOf("z", "a"), m.keys.toList())
        assertEquals(0.029411764815449715, m["z"])
    }

    @Test
    fun refusesMalformedInput() {
        for (bad in listOf("", "{", "[1,]", "{\"a\" 1}", "{\"a\": tru}", "\"open", "1 2", "{a: 1}", "-")) {
            try {
                Json.parse(bad)
                fail("accepted '$bad'")
            } catch (e: JsonException) {
                assertTrue(e.message!!.contains("offset"))
            }
        }
    }
}
