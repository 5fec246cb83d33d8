package dev.segkit.core

/**
 * A small JSON reader: objects become `Map<String, Any?>`, arrays `List<Any?>`, numbers `Long`
 * (integers) or `Double`, plus `String`, `Boolean` and `null`.
 *
 * The core has no dependencies (it must compile with Debian's kotlinc 1.3 and no Android
 * SDK, where neither org.json nor kotlinx.serialization exists), and a model contract is a
 * few kilobytes, so a recursive-descent reader is enough.
 */
class JsonException(message: String) : Exception(message)

object Json {
    fun parse(text: String): Any? {
        val reader = Reader(text)
        reader.skipSpace()
        val value = reader.value()
        reader.skipSpace()
        if (!reader.atEnd()) reader.fail("unexpected text after the JSON value")
        return value
    }

    private class Reader(private val text: String) {
        private var pos = 0

        fun atEnd() = pos >= text.length

        fun fail(what: String): Nothing {
            val line = text.substring(0, minOf(pos, text.length)).count { it == '\n' } + 1
            throw JsonException("$what (line $line, offset $pos)")
        }

        fun skipSpace() {
            while (pos < text.length && (text[pos] == ' ' || text[pos] == '\n' ||
                        text[pos] == '\r' || text[pos] == '\t')) pos++
        }

        private fun peek(): Char = if (pos < text.length) text[pos] else fail("unexpected end")

        private fun expect(word: String) {
            if (!text.startsWith(word, pos)) fail("expected '$word'")
            pos += word.length
        }

        fun value(): Any? {
            return when (peek()) {
                '{' -> obj()
                '[' -> array()
                '"' -> string()
                't' -> { expect("true"); true }
                'f' -> { expect("false"); false }
                'n' -> { expect("null"); null }
                else -> number()
            }
        }

        private fun obj(): Map<String, Any?> {
            val result = LinkedHashMap<String, Any?>()
            pos++
            skipSpace()
            if (peek() == '}') { pos++; return result }
            while (true) {
                skipSpace()
                if (peek() != '"') fail("expected a field name")
                val key = string()
                skipSpace()
                if (peek() != ':') fail("expected ':' after \"$key\"")
                pos++
                skipSpace()
                result[key] = value()
                skipSpace()
                when (peek()) {
                    ',' -> pos++
                    '}' -> { pos++; return result }
                    else -> fail("expected ',' or '}'")
                }
            }
        }

        private fun array(): List<Any?> {
            val result = ArrayList<Any?>()
            pos++
            skipSpace()
            if (peek() == ']') { pos++; return result }
            while (true) {
                skipSpace()
                result.add(value())
                skipSpace()
                when (peek()) {
                    ',' -> pos++
                    ']' -> { pos++; return result }
                    else -> fail("expected ',' or ']'")
                }
            }
        }

        private fun string(): String {
            pos++
            val out = StringBuilder()
            while (true) {
                val c = peek()
                pos++
                when {
                    c == '"' -> return out.toString()
                    c == '\\' -> {
                        val e = peek()
                        pos++
                        when (e) {
                            '"', '\\', '/' -> out.append(e)
                            'b' -> out.append('\b')
                            'f' -> out.append('\u000C')
                            'n' -> out.append('\n')
                            'r' -> out.append('\r')
                            't' -> out.append('\t')
                            'u' -> {
                                if (pos + 4 > text.length) fail("short \\u escape")
                                val code = text.substring(pos, pos + 4).toIntOrNull(16)
                                    ?: fail("bad \\u escape")
                                out.append(code.toChar())
                                pos += 4
                            }
                            else -> fail("bad escape '\\$e'")
                        }
                    }
                    c < ' ' -> fail("control character in a string")
                    else -> out.append(c)
                }
            }
        }

        private fun number(): Any {
            val start = pos
            if (peek() == '-') pos++
            var integral = true
            while (pos < text.length) {
                val c = text[pos]
                if (c in '0'..'9') pos++
                else if (c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-') {
                    integral = false
                    pos++
                } else break
            }
            val literal = text.substring(start, pos)
            if (literal.isEmpty() || literal == "-") fail("unexpected character")
            if (integral) literal.toLongOrNull()?.let { return it }
            return literal.toDoubleOrNull() ?: fail("bad number '$literal'")
        }
    }
}
