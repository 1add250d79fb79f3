// libFuzzer target for Maildir names: a message file name's info part (flags), and folder
// name escaping, which must be reversible in both layouts and never produce a path that
// leaves the Maildir (no "..", "/" or NUL in a component).
// Built by scripts/fuzz maildir; a plain build replays the files given as arguments.
import CFuzz
import Maildir
#if canImport(Glibc)
import Glibc
#endif

func fuzzBody(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    let parsed = MessageFileName(parsing: text)
    for sub in [MaildirSubdirectory.cur, .new] {
        let again = MessageFileName(parsing: MessageFileName.fileName(baseName: parsed.baseName, flags: parsed.flags, in: sub))
        precondition(again.baseName == parsed.baseName, "a file name's base name does not survive its flags")
        if sub == .cur { precondition(again.flags == parsed.flags, "flags do not survive a rename") }
    }
    // Split on the byte: "/" before a combining mark is one Character with it.
    let folder = text.utf8.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
    for (layout, dots) in [(MaildirLayout.fs, false), (MaildirLayout.maildirPlusPlus, true)] {
        for component in folder {
            let escaped = FolderNameEscaping.escape(component, escapeDots: dots)
            precondition(escaped != "." && escaped != ".." && !escaped.utf8.contains(0) && !escaped.utf8.contains(47),
                         "an escaped component could be a path step")
            precondition(FolderNameEscaping.unescape(escaped, dotsEscaped: dots) == component, "escaping is not reversible")
        }
        let path = layout.relativePath(for: folder)
        precondition(!path.utf8.split(separator: UInt8(ascii: "/")).contains { $0.elementsEqual("..".utf8) }, "a folder path leaves the Maildir")
        precondition(layout.folder(forRelativePath: path) == folder, "a folder's path does not lead back to it")
    }
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 { fuzzBody(data, size) }

var argc = CommandLine.argc
var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
exit(cfuzz_run(&argc, &argv) { fuzzBody($0, $1) })
