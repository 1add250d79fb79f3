import CZlib

/// COMPRESS=DEFLATE (RFC 4978): raw deflate in both directions, flushed per write.
final class DeflateStream: @unchecked Sendable {
    private var deflater = z_stream()
    private var inflater = z_stream()

    init?() {
        guard czlib_deflate_init_raw(&deflater, 1) == Z_OK else { return nil }   // level 1: mail is mostly incompressible
        guard czlib_inflate_init_raw(&inflater) == Z_OK else { deflateEnd(&deflater); return nil }
    }

    deinit {
        deflateEnd(&deflater)
        inflateEnd(&inflater)
    }

    /// Compresses `input` and flushes (Z_SYNC_FLUSH), so the server can read it at once.
    func compress(_ input: [UInt8]) -> [UInt8] {
        var input = input
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: max(1024, input.count + input.count / 8 + 64))
        input.withUnsafeMutableBufferPointer { inBuffer in
            deflater.next_in = inBuffer.baseAddress
            deflater.avail_in = UInt32(inBuffer.count)
            repeat {
                chunk.withUnsafeMutableBufferPointer { outBuffer in
                    deflater.next_out = outBuffer.baseAddress
                    deflater.avail_out = UInt32(outBuffer.count)
                    _ = deflate(&deflater, Z_SYNC_FLUSH)
                    out.append(contentsOf: outBuffer[0..<(outBuffer.count - Int(deflater.avail_out))])
                }
            } while deflater.avail_out == 0
        }
        return out
    }

    /// Decompresses what arrived; nil on corrupt data.
    func decompress(_ input: [UInt8]) -> [UInt8]? {
        var input = input
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        var failed = false
        input.withUnsafeMutableBufferPointer { inBuffer in
            inflater.next_in = inBuffer.baseAddress
            inflater.avail_in = UInt32(inBuffer.count)
            repeat {
                chunk.withUnsafeMutableBufferPointer { outBuffer in
                    inflater.next_out = outBuffer.baseAddress
                    inflater.avail_out = UInt32(outBuffer.count)
                    let rc = inflate(&inflater, Z_SYNC_FLUSH)
                    if rc != Z_OK && rc != Z_BUF_ERROR && rc != Z_STREAM_END { failed = true }
                    out.append(contentsOf: outBuffer[0..<(outBuffer.count - Int(inflater.avail_out))])
                }
            } while !failed && (inflater.avail_out == 0 || inflater.avail_in > 0)
        }
        return failed ? nil : out
    }
}
