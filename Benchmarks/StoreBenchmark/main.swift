// Benchmarks of the Maildir and State layers (issue targets in the table's last column).
// Run through Benchmarks/store (release build); prints a table, asserts nothing.
#if canImport(Glibc)
import Glibc
#endif
import Maildir
import State
import Support

func milliseconds(_ body: () throws -> Void) rethrows -> Double {
    let start = monotonicSeconds()
    try body()
    return (monotonicSeconds() - start) * 1000
}

func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }

var template = Array("/tmp/mailmirror-bench-XXXXXX".utf8CString)
let root = String(cString: mkdtemp(&template)!)
defer { _ = try? Subprocess.runShellBlocking("rm -rf '\(root)'", timeout: 120) }

// Maildir: 10,000 messages in one folder (a third in new/, the rest in cur/ with flags).
let store = MaildirStore(root: root + "/mail", layout: .fs)
let folder = try store.createFolder(["INBOX"])
let body = Array(String(repeating: "x", count: 2000).utf8)
let batch = DeliveryBatch(folder: folder)
var deliverMs = 0.0
deliverMs = try milliseconds {
    for i in 0..<10_000 {
        let w = try folder.beginDelivery()
        try w.write(body)
        try batch.add(w, flags: i % 3 == 0 ? MessageFlags() : MessageFlags("S"))
        if batch.count == 500 { _ = try batch.commit() }
    }
    _ = try batch.commit()
}
_ = try folder.scan()   // warm the dentry cache
var scans: [Double] = []
for _ in 0..<9 {
    scans.append(try milliseconds {
        let count = try folder.scan().messages.count
        precondition(count == 10_000)
    })
}

// State: 100,000 pairs in one transaction, then loading one folder of 10,000.
let state = try StateStore.open(directory: root + "/state")
let account = try state.account(named: "bench", protocol: "imap")
let folders = try (0..<10).map { try state.folder(of: account, remoteName: Array("F\($0)".utf8), localName: "F\($0)") }
let insertMs = try milliseconds {
    try state.transaction {
        for (f, record) in folders.enumerated() {
            try state.insertPairs((0..<10_000).map { i in
                MessagePair(folder: record.id, uid: UID(UInt32(i + 1)), localName: "\(f)-\(i).M1P1.host,S=2000",
                            flags: "S", size: 2040, messageID: Array("<\(f).\(i)@bench>".utf8), internalDate: 1_700_000_000)
            })
        }
    }
}
var loads: [Double] = []
for _ in 0..<9 {
    loads.append(try milliseconds {
        let count = try state.pairs(in: folders[3].id).count
        precondition(count == 10_000)
    })
}

print("| benchmark | result | target |")
print("|---|---|---|")
print("| deliver 10,000 × 2 KB, batches of 500 (syncfs + renames + dir fsync) | \(Int(deliverMs)) ms (\(Int(10_000 / (deliverMs / 1000))) msg/s) | — |")
print("| scan 10,000-message folder, warm, median of 9 | \(format1(median(scans))) ms | < 100 ms |")
print("| insert 100,000 pairs in one transaction | \(Int(insertMs)) ms | < 2000 ms |")
print("| load the 10,000 pairs of one folder, median of 9 | \(format1(median(loads))) ms | < 50 ms |")

func format1(_ v: Double) -> String { String((v * 10).rounded() / 10) }
