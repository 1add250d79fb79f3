#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import Maildir
import Support
import TestSupport

/// The keyword table of a Maildir folder in Dovecot's scheme (`dovecot-keywords` and the
/// letters a–z): read as Dovecot reads it, written as Dovecot writes it, and understood by a
/// real Dovecot serving the same Maildir, both ways.
@Suite struct KeywordsTests {
    @Test func readsTheFileAsDovecotDoes() {
        let file = Array("0 $Junk\n2 $label1\nbroken line\n30 tooFar\n1 \n3 $Junk\nx y\n4 Work\n".utf8)
        let k = MaildirKeywords(parsing: file)
        #expect(k.keyword(for: UInt8(ascii: "a")) == "$Junk")
        #expect(k.keyword(for: UInt8(ascii: "b")) == nil, "an empty name is skipped")
        #expect(k.keyword(for: UInt8(ascii: "c")) == "$label1")
        #expect(k.keyword(for: UInt8(ascii: "d")) == nil, "a name seen already is skipped")
        #expect(k.letter(for: "Work") == UInt8(ascii: "e"))
        #expect(k.letter(for: "tooFar") == nil)
        #expect(k.keywords(of: MessageFlags("Sace")) == ["$Junk", "$label1", "Work"])
        #expect(MaildirKeywords(parsing: k.serialized) == k)
        #expect(String(decoding: k.serialized, as: UTF8.self) == "0 $Junk\n2 $label1\n4 Work\n")
    }

    @Test func assignsFreeLettersUpToTwentySix() {
        var k = MaildirKeywords(parsing: Array("1 B\n".utf8))
        #expect(k.assign("A") == UInt8(ascii: "a"), "the first hole")
        #expect(k.assign("B") == UInt8(ascii: "b"), "already there")
        for i in 2..<26 { #expect(k.assign("k\(i)") == UInt8(ascii: "a") + UInt8(i)) }
        #expect(k.assign("one too many") == nil)
        #expect(k.names.compactMap { $0 }.count == 26)
    }

    @Test func writesAtomicallyAndReadsBack() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let folder = MaildirFolder(name: ["INBOX"], path: dir.path)
        #expect(try MaildirKeywords.read(in: folder) == MaildirKeywords(), "no file: no keywords")
        var k = MaildirKeywords()
        _ = k.assign("$Junk")
        _ = k.assign("$MDNSent")
        try k.write(to: folder)
        #expect(try MaildirKeywords.read(in: folder) == k)
        // Replaced, the file keeps the mode it had.
        chmod(dir.path + "/" + MaildirKeywords.fileName, 0o640)
        _ = k.assign("$Phishing")
        try k.write(to: folder)
        var st = stat()
        stat(dir.path + "/" + MaildirKeywords.fileName, &st)
        #expect(st.st_mode & 0o777 == 0o640)
        #expect(try MaildirKeywords.read(in: folder).letter(for: "$Phishing") == UInt8(ascii: "c"))
        let left = FSTest.names(in: dir.path)
        #expect(left == [MaildirKeywords.fileName], "no temporary file left: \(left)")
    }

    /// A Dovecot serving the same Maildir: keywords it sets are read here through its file
    /// and letters, and keywords written here are what it reports.
    @Test func aDovecotServingTheMaildirAgrees() async throws {
        let fixture = try await DovecotFixture.shared()
        let user = try fixture.makeUser("kw", fields: "")
        try await fixture.deliver(Array("Subject: k\r\nMessage-ID: <k@x>\r\n\r\nbody\r\n".utf8), to: "INBOX", user: user.name)
        let doveadm = "doveadm -c \(fixture.directory)/dovecot.conf"
        // Dovecot → here.
        let set = try await runCommand(["sh", "-c", "\(doveadm) flags add -u \(user.name) '\\Seen $label1 $Junk' mailbox INBOX all"])
        #expect(set.status == 0, "\(set.standardError)")
        let inbox = MaildirFolder(name: ["INBOX"], path: fixture.directory + "/mail/" + user.name)
        let table = try MaildirKeywords.read(in: inbox)
        let file = try #require(inbox.scan().messages.first)
        #expect(Set(table.keywords(of: file.flags)) == ["$label1", "$Junk"], "\(table.names) \(file.fileName)")
        #expect(file.flags.contains(UInt8(ascii: "S")))
        // Here → Dovecot: a new keyword in the table and its letter on the file.
        var mine = table
        let assigned = mine.assign("Work")
        let letter = try #require(assigned)
        try mine.write(to: inbox)
        var flags = file.flags
        flags.insert(letter)
        _ = try inbox.setFlags(file, to: flags)
        let fetched = try await runCommand(["sh", "-c", "\(doveadm) fetch -u \(user.name) flags mailbox INBOX all"])
        #expect(fetched.status == 0, "\(fetched.standardError)")
        for keyword in ["$label1", "$Junk", "Work", "\\Seen"] {
            #expect(fetched.standardOutput.contains(keyword), "\(keyword) in \(fetched.standardOutput)")
        }
    }
}

/// File names in a directory, sorted (dot entries aside).
enum FSTest {
    static func names(in path: String) -> [String] {
        guard let dir = opendir(path) else { return [] }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }
}
