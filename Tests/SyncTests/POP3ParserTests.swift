import Testing
@testable import POP3
import TestSupport

@Suite struct POP3ParserTests {
    @Test(arguments: [
        ("+OK 2 320", true, nil as String?, "2 320"),
        ("+OK", true, nil, ""),
        ("-ERR [IN-USE] Mailbox locked", false, "IN-USE", "Mailbox locked"),
        ("-ERR [SYS/TEMP] try later", false, "SYS/TEMP", "try later"),
        ("-ERR [AUTH] Authentication failed.", false, "AUTH", "Authentication failed."),
        ("-ERR no such message", false, nil, "no such message"),
    ])
    func statusLines(line: String, ok: Bool, code: String?, text: String) {
        let status = POP3Status(line: Array(line.utf8))
        #expect(status == POP3Status(ok: ok, code: code, text: text))
    }

    @Test(arguments: ["", "OK", "+OKAY", "* OK", "-ERRor"])
    func notStatusLines(line: String) {
        #expect(POP3Status(line: Array(line.utf8)) == nil)
    }

    @Test func dotUnstuffingAtEverySplit() async throws {
        let wire = Array("Subject: x\r\n\r\n..starts with dot\r\n.\r\n".utf8) // ends at the lone dot
        let input = Array("Subject: x\r\n\r\n...two\r\n..\r\n.a\r\nend\r\n.\r\n+OK next\r\n".utf8)
        let expected = Array("Subject: x\r\n\r\n..two\r\n.\r\na\r\nend\r\n".utf8)
        for split in 0...input.count {
            var d = POP3MultilineDecoder()
            let a = try d.decode(Array(input[..<split]))
            var out = a.output
            var consumed = a.consumed
            if !d.isFinished {
                let b = try d.decode(Array(input[split...]))
                out += b.output
                consumed += b.consumed
            }
            #expect(out == expected, "split at \(split)")
            #expect(d.isFinished)
            #expect(Array(input[consumed...]) == Array("+OK next\r\n".utf8), "what follows the body is left for the next response")
        }
        var d = POP3MultilineDecoder()
        #expect(try d.decode(wire).output == Array("Subject: x\r\n\r\n.starts with dot\r\n".utf8))
    }

    @Test func hostileLineLengthIsBounded() {
        var d = POP3MultilineDecoder(maxLineLength: 1000)
        #expect(throws: POP3MultilineDecoder.LineTooLong.self) { _ = try d.decode([UInt8](repeating: 65, count: 5000)) }
    }

    @Test func fuzzCorpusReplays() async throws {
        let dir = repositoryRoot + "/Fuzz/corpus/pop3"
        let names = listDirectory(dir)
        #expect(names.count >= 4)
        for name in names {
            let bytes = readBytes(dir + "/" + String(name)) ?? []
            var whole = POP3MultilineDecoder()
            let once = try? whole.decode(bytes)
            for split in replaySplitPoints(bytes.count) {
                var d = POP3MultilineDecoder()
                guard var out = try? d.decode(Array(bytes[..<split])).output else { continue }
                if !d.isFinished, let rest = try? d.decode(Array(bytes[split...])) { out += rest.output }
                #expect(out == once?.output, "\(name) split at \(split)")
            }
        }
    }
}
