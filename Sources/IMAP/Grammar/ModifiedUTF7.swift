/// Modified UTF-7 for mailbox names (RFC 3501 §5.1.3): printable ASCII stands for itself
/// (`&` as `&-`); other characters are UTF-16, base64 with `,` for `/`, between `&` and `-`.
public enum ModifiedUTF7 {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,".utf8)

    /// Encodes a Unicode name for the wire.
    public static func encode(_ name: String) -> [UInt8] {
        var out: [UInt8] = []
        var pending: [UInt16] = []
        func flush() {
            guard !pending.isEmpty else { return }
            out.append(UInt8(ascii: "&"))
            var bytes: [UInt8] = []
            for unit in pending { bytes.append(UInt8(unit >> 8)); bytes.append(UInt8(unit & 0xff)) }
            var i = 0
            while i < bytes.count {
                let b0 = bytes[i], b1 = i + 1 < bytes.count ? bytes[i + 1] : 0, b2 = i + 2 < bytes.count ? bytes[i + 2] : 0
                let n = min(3, bytes.count - i)
                out.append(alphabet[Int(b0 >> 2)])
                out.append(alphabet[Int((b0 & 0x03) << 4 | b1 >> 4)])
                if n > 1 { out.append(alphabet[Int((b1 & 0x0f) << 2 | b2 >> 6)]) }
                if n > 2 { out.append(alphabet[Int(b2 & 0x3f)]) }
                i += 3
            }
            out.append(UInt8(ascii: "-"))
            pending = []
        }
        for scalar in name.unicodeScalars {
            if scalar.value >= 0x20 && scalar.value <= 0x7e {
                flush()
                if scalar == "&" { out.append(contentsOf: [UInt8(ascii: "&"), UInt8(ascii: "-")]) }
                else { out.append(UInt8(scalar.value)) }
            } else {
                pending.append(contentsOf: String(scalar).utf16)
            }
        }
        flush()
        return out
    }

    /// Decodes wire bytes to a Unicode name; nil when they are not valid modified UTF-7.
    public static func decode(_ bytes: [UInt8]) -> String? {
        var out = ""
        var i = 0
        while i < bytes.count {
            let b = bytes[i]
            guard b >= 0x20 && b <= 0x7e else { return nil }
            if b != UInt8(ascii: "&") {
                out.unicodeScalars.append(Unicode.Scalar(b))
                i += 1
                continue
            }
            guard let end = bytes[(i + 1)...].firstIndex(of: UInt8(ascii: "-")) else { return nil }
            if end == i + 1 {
                out.append("&")
                i = end + 1
                continue
            }
            var bits: UInt32 = 0
            var bitCount = 0
            var units: [UInt16] = []
            var pendingByte: UInt8?
            for c in bytes[(i + 1)..<end] {
                guard let v = alphabet.firstIndex(of: c) else { return nil }
                bits = bits << 6 | UInt32(v)
                bitCount += 6
                if bitCount >= 8 {
                    bitCount -= 8
                    let byte = UInt8((bits >> UInt32(bitCount)) & 0xff)
                    if let high = pendingByte {
                        units.append(UInt16(high) << 8 | UInt16(byte))
                        pendingByte = nil
                    } else {
                        pendingByte = byte
                    }
                }
            }
            // Leftover bits must be zero padding; a dangling byte or an encoded ASCII
            // character makes the name invalid.
            guard pendingByte == nil, bits & ((1 << UInt32(bitCount)) - 1) == 0 else { return nil }
            var decoded = ""
            for scalar in Unicode.UTF16.decode(units) {
                guard let scalar else { return nil }
                decoded.unicodeScalars.append(scalar)
            }
            if decoded.unicodeScalars.contains(where: { $0.value >= 0x20 && $0.value <= 0x7e }) { return nil }
            out += decoded
            i = end + 1
        }
        return out
    }
}

extension Unicode.UTF16 {
    /// Decodes UTF-16 code units to scalars; nil elements mark invalid sequences.
    static func decode(_ units: [UInt16]) -> [Unicode.Scalar?] {
        var result: [Unicode.Scalar?] = []
        var iterator = units.makeIterator()
        var decoder = Unicode.UTF16()
        loop: while true {
            switch decoder.decode(&iterator) {
            case .scalarValue(let s): result.append(s)
            case .emptyInput: break loop
            case .error: result.append(nil)
            }
        }
        return result
    }
}
