import Testing
@testable import Config
import TestSupport

@Suite struct TOMLParserTests {
    func parse(_ text: String) throws(TOMLError) -> TOMLTable { try TOMLParser.parse(text) }

    @Test func scalarsOfEveryKind() throws {
        let t = try parse("""
        # comment
        a = "basic \\"q\\" \\\\ \\t \\u00e9 \\U0001F600"
        b = 'C:\\literal\\path'
        c = 42
        d = -1_000
        e = 0x1F
        f = 3.5
        g = 1e3
        h = true
        i = false
        "quoted key" = 1
        j = +7   # trailing comment
        """)
        #expect(t["a"]?.value == .string("basic \"q\" \\ \t é 😀"))
        #expect(t["b"]?.value == .string("C:\\literal\\path"))
        #expect(t["c"]?.value == .integer(42))
        #expect(t["d"]?.value == .integer(-1000))
        #expect(t["e"]?.value == .integer(31))
        #expect(t["f"]?.value == .float(3.5))
        #expect(t["g"]?.value == .float(1000))
        #expect(t["h"]?.value == .boolean(true))
        #expect(t["i"]?.value == .boolean(false))
        #expect(t["quoted key"]?.value == .integer(1))
        #expect(t["j"]?.value == .integer(7))
        #expect(t["c"]?.line == 4)
    }

    @Test func multilineStrings() throws {
        let t = try parse("a = \"\"\"\nline1\nline2 \\\n   joined\"\"\"\nb = '''\nraw \\n\n'''\nc = 1\n")
        #expect(t["a"]?.value == .string("line1\nline2 joined"))
        #expect(t["b"]?.value == .string("raw \\n\n"))
        #expect(t["c"]?.line == 8)
    }

    @Test func arraysAcrossLinesWithComments() throws {
        let t = try parse("""
        folders = [
          "*",      # everything
          "!Spam",
          [1, 2],
        ]
        next = 1
        """)
        #expect(t["folders"]?.value == .array([.string("*"), .string("!Spam"), .array([.integer(1), .integer(2)])]))
        #expect(t["next"]?.line == 6)
    }

    @Test func tablesArraysOfTablesDottedKeysAndInlineTables() throws {
        let t = try parse("""
        [general]
        x = 1
        [[account]]
        name = "a"
        [[account]]
        name = "b"
        sub.key = 2
        inline = { p = 1, q = "r" }
        [general.nested]
        y = 2
        """)
        guard case .table(let general)? = t["general"]?.value else { Issue.record("no general"); return }
        #expect(general["x"]?.value == .integer(1))
        guard case .table(let nested)? = general["nested"]?.value else { Issue.record("no nested"); return }
        #expect(nested["y"]?.value == .integer(2))
        guard case .array(let accounts)? = t["account"]?.value, accounts.count == 2,
              case .table(let second) = accounts[1] else { Issue.record("accounts"); return }
        #expect(second["name"]?.value == .string("b"))
        #expect(second.line == 5)
        guard case .table(let sub)? = second["sub"]?.value else { Issue.record("sub"); return }
        #expect(sub["key"]?.value == .integer(2))
        guard case .table(let inline)? = second["inline"]?.value else { Issue.record("inline"); return }
        #expect(inline["q"]?.value == .string("r"))
    }

    @Test func crlfLineEndingsAndBOM() throws {
        let t = try parse("\u{FEFF}a = 1\r\nb = \"x\"\r\n")
        #expect(t["b"]?.value == .string("x"))
        #expect(t["b"]?.line == 2)
    }

    @Test(arguments: [
        ("a = \"open\n", 1, "unterminated string"),
        ("a = 1\na = 2\n", 2, "\"a\" is set twice (first on line 1)"),
        ("x = 1\n[t]\n[t]\n", 3, "table [t] is defined twice"),
        ("tls = ssl\n", 1, "ssl is not a value; strings need quotes: \"ssl\""),
        ("a = [1, 2\nb = 3\n", 2, "expected , or ]"),
        ("a = 1 2\n", 1, "unexpected '2' after the value"),
        ("= 1\n", 1, "expected a key"),
        ("a\n", 1, "expected = after the key \"a\""),
        ("a = \"\\q\"\n", 1, "unknown escape \\q"),
        ("a = 1979-05-27\n", 1, "dates and times are not used"),
        ("a = 012\n", 1, "leading zeros"),
        ("a = 99999999999999999999\n", 1, "too large"),
        ("a = 1__0\n", 1, "underscore"),
        ("[[x]]\n[x]\n", 2, "table [x] is defined twice"),
        ("a = 1\n[a]\n", 2, "\"a\" is already a value"),
        ("a = \"\"\"never\nclosed\n", 1, "never closed"),
        ("a = \n", 1, "expected a value"),
        ("a = [\n", 1, "not closed"),
    ])
    func malformedDocuments(text: String, line: Int, message: String) {
        do {
            _ = try parse(text)
            Issue.record("parsed: \(text)")
        } catch {
            #expect(error.line == line, "\(text)")
            #expect(error.message.contains(message), "\(error.message)")
        }
    }

    @Test func deeplyNestedArraysAreBounded() {
        let text = "a = " + String(repeating: "[", count: 1000) + String(repeating: "]", count: 1000)
        #expect(throws: TOMLError.self) { try parse(text) }
    }

    /// Every file of the fuzz corpus (seeds, what fuzz runs found, any crash input) is read
    /// without a crash: an error or a configuration, nothing else.
    @Test func fuzzCorpusReplays() throws {
        let dir = repositoryRoot + "/Fuzz/corpus/toml"
        let names = listDirectory(dir)
        #expect(names.count >= 3)
        for name in names {
            let text = String(decoding: readBytes(dir + "/" + name) ?? [], as: UTF8.self)
            _ = try? TOMLParser.parse(text)
            _ = try? ConfigurationLoader.parse(text: text, path: "fuzz.toml", environment: ["HOME": "/nonexistent"])
        }
    }
}
