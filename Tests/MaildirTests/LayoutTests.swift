import Testing
@testable import Maildir
import TestSupport

@Suite struct LayoutTests {
    @Test(arguments: [
        (["INBOX"], "INBOX", ""),
        (["Archive", "2024"], "Archive/2024", ".Archive.2024"),
        (["INBOX", "child"], "INBOX/child", ".INBOX.child"),
        (["Entwürfe"], "Entwürfe", ".Entwürfe"),
        (["Отправленные"], "Отправленные", ".Отправленные"),
        (["with space", "a&b"], "with space/a&b", ".with space.a&b"),
        (["v1.2"], "v1.2", ".v1%2E2"),
        ([".hidden"], "%2Ehidden", ".%2Ehidden"),
        (["."], "%2E", ".%2E"),
        ([".."], "%2E%2E", ".%2E%2E"),
        ([""], "%", ".%"),
        (["a/b"], "a%2Fb", ".a%2Fb"),
        (["100%"], "100%25", ".100%25"),
        (["nul\u{0}x"], "nul%00x", ".nul%00x"),
        (["tab\tnl\n"], "tab%09nl%0A", ".tab%09nl%0A"),
        (["del\u{7F}"], "del%7F", ".del%7F"),
        (["cur"], "%63ur", ".%63ur"),
        (["Archive", "new"], "Archive/%6Eew", ".Archive.%6Eew"),
        (["tmp", "x"], "%74mp/x", ".%74mp.x"),
        (["a.", "b"], "a./b", ".a%2E.b"),
        // A component that begins with a combining mark: after the separator it forms one
        // Character with it, so paths are taken apart on bytes (a fuzz finding).
        (["\u{5A0}x", ".y"], "\u{5A0}x/%2Ey", ".\u{5A0}x.%2Ey"),
        (["a", "\u{301}b"], "a/\u{301}b", ".a.\u{301}b"),
    ])
    func mapping(folder: [String], fs: String, maildirPlusPlus: String) {
        #expect(MaildirLayout.fs.relativePath(for: folder) == fs)
        #expect(MaildirLayout.maildirPlusPlus.relativePath(for: folder) == maildirPlusPlus)
        #expect(MaildirLayout.fs.folder(forRelativePath: fs) == folder)
        #expect(MaildirLayout.maildirPlusPlus.folder(forRelativePath: maildirPlusPlus) == folder)
    }

    @Test(arguments: ["..", ".", "a/../b", ".notmuch", "cur", "x%", "x%zz", "x%2", "%2", "a/./b", "a//b", "tab\tx"])
    func foreignFSPathsAreNotFolders(path: String) {
        #expect(MaildirLayout.fs.folder(forRelativePath: path) == nil)
    }

    @Test(arguments: ["notdotted", ".a/b", ".a..b%", "..", ".x%G0"])
    func foreignMaildirPlusPlusPathsAreNotFolders(path: String) {
        #expect(MaildirLayout.maildirPlusPlus.folder(forRelativePath: path) == nil)
    }

    /// Random names, including every ASCII byte: escaping round-trips and never yields a
    /// component that the file system would interpret (., .., /, NUL).
    @Test func randomNamesRoundTripAndStaySafe() {
        var rng = SeededGenerator(seed: 42)
        let alphabet: [Character] = (0..<128).map { Character(Unicode.Scalar(UInt8($0))) } + ["ü", "é", "Ж", "日", "😀"]
        for _ in 0..<5000 {
            let depth = Int(rng.next() % 3) + 1
            let folder: [String] = (0..<depth).map { _ in
                String((0..<Int(rng.next() % 6)).map { _ in alphabet[Int(rng.next() % UInt64(alphabet.count))] })
            }
            for layout in MaildirLayout.allCases {
                let path = layout.relativePath(for: folder)
                if !(layout == .maildirPlusPlus && folder == ["INBOX"]) {
                    for part in path.split(separator: "/", omittingEmptySubsequences: false) {
                        #expect(part != "." && part != ".." && !part.isEmpty, "\(folder) -> \(path)")
                        #expect(!part.utf8.contains(0))
                    }
                }
                if layout == .maildirPlusPlus { #expect(!path.contains("/")) }
                #expect(layout.folder(forRelativePath: path) == folder, "\(layout) \(folder) -> \(path)")
            }
        }
    }

    /// The fuzz corpus of Maildir names replays with the fuzz target's properties: a file
    /// name's base name and flags survive a rename, escaping is reversible and never yields
    /// a path step, every folder's path leads back to it.
    @Test func fuzzCorpusReplays() throws {
        let dir = repositoryRoot + "/Fuzz/corpus/maildir"
        let names = listDirectory(dir)
        #expect(names.count >= 3)
        for name in names {
            let text = String(decoding: readBytes(dir + "/" + name) ?? [], as: UTF8.self)
            let parsed = MessageFileName(parsing: text)
            let renamed = MessageFileName(parsing: MessageFileName.fileName(baseName: parsed.baseName, flags: parsed.flags, in: .cur))
            #expect(renamed.baseName == parsed.baseName && renamed.flags == parsed.flags, "\(name)")
            let folder = text.utf8.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
            for (layout, dots) in [(MaildirLayout.fs, false), (MaildirLayout.maildirPlusPlus, true)] {
                for component in folder {
                    let escaped = FolderNameEscaping.escape(component, escapeDots: dots)
                    #expect(escaped != "." && escaped != ".." && !escaped.utf8.contains(0) && !escaped.utf8.contains(47), "\(name)")
                    #expect(FolderNameEscaping.unescape(escaped, dotsEscaped: dots) == component, "\(name)")
                }
                #expect(layout.folder(forRelativePath: layout.relativePath(for: folder)) == folder, "\(name) in \(layout)")
            }
        }
    }
}
