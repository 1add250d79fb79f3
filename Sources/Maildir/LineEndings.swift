#if canImport(Glibc)
import Glibc
#endif

/// Converts the network's CRLF line endings to the Maildir's LF, chunk by chunk.
///
/// A CR that ends one chunk is held back until the next chunk shows whether an LF follows,
/// so the result does not depend on where the network split the data. A CR not followed
/// by LF is kept (invariant 5: the bytes are the server's, only CRLF becomes LF).
public struct CRLFToLFConverter: Sendable {
    private var pendingCR = false

    public init() {}

    /// The converted bytes of `chunk` (spans between CRs are copied whole: the common
    /// case costs one memchr and one copy per line).
    public mutating func convert(_ chunk: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(chunk.count + 1)
        chunk.withUnsafeBufferPointer { buf in
            guard let base = buf.baseAddress, buf.count > 0 else { return }
            var i = 0
            if pendingCR {
                pendingCR = false
                if base[0] != 10 { out.append(13) }
            }
            while i < buf.count {
                guard let cr = memchr(base + i, 13, buf.count - i) else {
                    out.append(contentsOf: UnsafeBufferPointer(start: base + i, count: buf.count - i))
                    break
                }
                let at = UnsafePointer<UInt8>(cr.assumingMemoryBound(to: UInt8.self)) - base
                out.append(contentsOf: UnsafeBufferPointer(start: base + i, count: at - i))
                if at + 1 == buf.count {
                    pendingCR = true          // decide with the next chunk
                } else if base[at + 1] != 10 {
                    out.append(13)            // a lone CR stays
                }
                i = at + 1
            }
        }
        return out
    }

    /// Converts any collection (tests, small inputs).
    public mutating func convert<C: Collection>(_ chunk: C) -> [UInt8] where C.Element == UInt8 {
        convert(Array(chunk))
    }

    /// What is still held back at the end of the data (a final lone CR).
    public mutating func finish() -> [UInt8] {
        defer { pendingCR = false }
        return pendingCR ? [13] : []
    }
}

/// The size a Maildir file has on the wire: one extra byte (CR) for every LF not already
/// preceded by a CR. This is what a server reports as RFC822.SIZE for the same message.
public func crlfSize<C: Collection>(of bytes: C) -> Int64 where C.Element == UInt8 {
    var size = Int64(0)
    var previous: UInt8 = 0
    for b in bytes {
        if b == 10 && previous != 13 { size += 1 }
        size += 1
        previous = b
    }
    return size
}

/// Converts a Maildir file's LF line endings to the network's CRLF, chunk by chunk: an LF
/// gets a CR before it unless one is already there (a file written with CRLF is sent as it
/// is). The only change an upload makes to a message (invariant 5).
public struct LFToCRLFConverter: Sendable {
    private var previousWasCR = false

    public init() {}

    /// The converted bytes of `chunk` (spans between LFs are copied whole).
    public mutating func convert(_ chunk: ArraySlice<UInt8>) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(chunk.count + chunk.count / 32 + 1)
        chunk.withUnsafeBufferPointer { buf in
            guard let base = buf.baseAddress, buf.count > 0 else { return }
            var i = 0
            while i < buf.count {
                guard let lf = memchr(base + i, 10, buf.count - i) else {
                    out.append(contentsOf: UnsafeBufferPointer(start: base + i, count: buf.count - i))
                    break
                }
                let at = UnsafePointer<UInt8>(lf.assumingMemoryBound(to: UInt8.self)) - base
                out.append(contentsOf: UnsafeBufferPointer(start: base + i, count: at - i))
                let crBefore = at > 0 ? base[at - 1] == 13 : previousWasCR
                if !crBefore { out.append(13) }
                out.append(10)
                i = at + 1
            }
            previousWasCR = base[buf.count - 1] == 13
        }
        return out
    }
}
