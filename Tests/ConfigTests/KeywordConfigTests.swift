import Testing
@testable import Config

/// `keywords`, `notmuch_config` and `keyword_tags` (docs/keywords.md).
@Suite struct KeywordConfigTests {
    func load(_ text: String) throws(ConfigurationError) -> Configuration {
        try ConfigurationLoader.parse(text: text, path: "cfg.toml", environment: testEnvironment)
    }

    func messages(_ text: String) -> [String] {
        do {
            _ = try load(text)
            return []
        } catch {
            return error.diagnostics.map(\.message)
        }
    }

    @Test func maildirIsTheDefaultAndEachModeReads() throws {
        #expect(try load(imapAccount()).accounts[0].keywords == .maildir)
        for mode in KeywordMode.allCases {
            #expect(try load(imapAccount("keywords = \"\(mode.rawValue)\"")).accounts[0].keywords == mode)
        }
        let nm = try load(imapAccount("keywords = \"notmuch\"\nnotmuch_config = \"~/.notmuch-work\"\nkeyword_tags = { \"$Junk\" = \"spam\", \"$label1\" = \"important\" }")).accounts[0]
        #expect(nm.notmuchConfig == "/home/u/.notmuch-work")
        #expect(nm.keywordTags == ["$Junk": "spam", "$label1": "important"])
        let rendered = try load(imapAccount("keywords = \"notmuch\"\nkeyword_tags = { \"$Junk\" = \"spam\" }")).renderResolved()
        #expect(rendered.contains("keywords = \"notmuch\"") && rendered.contains("keyword_tags = { \"$Junk\" = \"spam\" }"), "\(rendered)")
    }

    @Test func badValuesSayWhatToWrite() {
        #expect(messages(imapAccount("keywords = \"tags\"")).contains { $0.contains("not one of maildir, notmuch, none") })
        #expect(messages(imapAccount("keywords = \"notmuch\"\nkeyword_tags = { \"\\\\Flagged\" = \"flagged\" }"))
            .contains { $0.contains("synchronize_flags") })
        #expect(messages(imapAccount("keywords = \"notmuch\"\nkeyword_tags = { \"my tag\" = \"x\" }")).contains { $0.contains("not an IMAP keyword") })
        #expect(messages(imapAccount("keywords = \"notmuch\"\nkeyword_tags = \"spam\"")).contains { $0.contains("must be a table") })
        #expect(messages(pop3Account("keywords = \"maildir\"")).contains { $0.contains("keywords") })
    }
}
