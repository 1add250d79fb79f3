import Testing
@testable import Maildir

@Suite struct FlagsTests {
    @Test func all64CombinationsRoundTrip() {
        let known = MessageFlags.known
        for mask in 0..<64 {
            var flags = MessageFlags()
            for (i, letter) in known.enumerated() where mask & (1 << i) != 0 { flags.insert(letter) }
            let expectedLetters = known.enumerated().filter { mask & (1 << $0.offset) != 0 }.map(\.element)
            #expect(flags.letters == expectedLetters)   // ASCII order: D F P R S T
            for sub in [MaildirSubdirectory.cur, .new] {
                let name = MessageFileName.fileName(baseName: "123.M1P2Q3.host,S=10", flags: flags, in: sub)
                let parsed = MessageFileName(parsing: name)
                #expect(parsed.baseName == "123.M1P2Q3.host,S=10")
                #expect(parsed.flags == flags)
                if sub == .new && mask == 0 { #expect(name == "123.M1P2Q3.host,S=10") }
                if sub == .cur { #expect(name.hasSuffix(":2," + String(decoding: expectedLetters, as: UTF8.self))) }
            }
        }
    }

    @Test func unknownLettersArePreservedAndSorted() {
        let parsed = MessageFileName(parsing: "1.x.host:2,Sbaz")
        #expect(parsed.flags.description == "Sabz")
        var flags = parsed.flags
        flags.insert(MessageFlags.flagged)
        #expect(MessageFileName.fileName(baseName: parsed.baseName, flags: flags, in: .cur) == "1.x.host:2,FSabz")
    }

    @Test func namesWithoutInfoOrWithOtherInfo() {
        #expect(MessageFileName(parsing: "1.x.host").baseName == "1.x.host")
        #expect(MessageFileName(parsing: "1.x.host").hasInfo == false)
        #expect(MessageFileName(parsing: "1.x.host:1,foo").baseName == "1.x.host")
        #expect(MessageFileName(parsing: "1.x.host:2,").flags.isEmpty)
        #expect(MessageFileName(parsing: "1.x.host:2,").hasInfo)
        #expect(MessageFileName(parsing: "1.x.host,S=1234:2,S").recordedSize == 1234)
        #expect(MessageFileName(parsing: "1.x.host,S=12,W=14:2,S").recordedSize == 12)
        #expect(MessageFileName(parsing: "1.x.host").recordedSize == nil)
    }

    @Test func lineEndingConversionIsIndependentOfChunking() {
        let wire = Array("a\r\nb\rc\r\n\r\nd\r".utf8)
        let expected = Array("a\nb\rc\n\nd\r".utf8)
        for split in 0...wire.count {
            var converter = CRLFToLFConverter()
            let out = converter.convert(wire[..<split]) + converter.convert(wire[split...]) + converter.finish()
            #expect(out == expected, "split at \(split)")
        }
        #expect(crlfSize(of: Array("a\nb\r\nc".utf8)) == 7)
    }

    /// LF → CRLF for uploads: an LF already after a CR stays as it is, a lone CR stays,
    /// wherever the file's reads split the data.
    @Test func lfToCRLFAtAnySplit() {
        let file = Array("\na\nb\r\nc\rd\n\n\re\r".utf8)
        let expected = Array("\r\na\r\nb\r\nc\rd\r\n\r\n\re\r".utf8)
        for split in 0...file.count {
            var converter = LFToCRLFConverter()
            let out = converter.convert(file[..<split]) + converter.convert(file[split...])
            #expect(out == expected, "split at \(split)")
            #expect(Int64(out.count) == crlfSize(of: file))
        }
    }
}
