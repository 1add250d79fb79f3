/// The records of a DNS answer that `init` uses, parsed from the wire format (RFC 1035
/// §4, SRV RFC 2782) — pure, so it is tested on record data without a network.
public enum DNSRecord: Sendable, Equatable {
    case srv(priority: UInt16, weight: UInt16, port: UInt16, target: String)
    case mx(preference: UInt16, exchange: String)
}

public enum DNSMessage {
    public static let typeMX: Int32 = 15
    public static let typeSRV: Int32 = 33

    /// The SRV and MX records in the answer section; malformed input gives nil.
    public static func parse(_ message: [UInt8]) -> [DNSRecord]? {
        guard message.count >= 12 else { return nil }
        func u16(_ at: Int) -> UInt16? { at + 1 < message.count ? UInt16(message[at]) << 8 | UInt16(message[at + 1]) : nil }
        guard let qd = u16(4), let an = u16(6) else { return nil }
        var offset = 12
        for _ in 0..<qd {
            guard let (_, next) = readName(message, at: offset) else { return nil }
            offset = next + 4   // QTYPE, QCLASS
        }
        var records: [DNSRecord] = []
        for _ in 0..<an {
            guard let (_, next) = readName(message, at: offset), let type = u16(next), let length = u16(next + 8) else { return nil }
            let rdata = next + 10
            guard rdata + Int(length) <= message.count else { return nil }
            switch type {
            case 33:
                guard length >= 7, let priority = u16(rdata), let weight = u16(rdata + 2), let port = u16(rdata + 4),
                      let (target, _) = readName(message, at: rdata + 6) else { return nil }
                records.append(.srv(priority: priority, weight: weight, port: port, target: target))
            case 15:
                guard length >= 3, let preference = u16(rdata), let (exchange, _) = readName(message, at: rdata + 2) else { return nil }
                records.append(.mx(preference: preference, exchange: exchange))
            default:
                break
            }
            offset = rdata + Int(length)
        }
        return records
    }

    /// A possibly compressed domain name at `offset`: (name, offset after it in place).
    static func readName(_ message: [UInt8], at start: Int) -> (String, Int)? {
        var labels: [String] = []
        var offset = start
        var end: Int?
        var jumps = 0
        while true {
            guard offset < message.count else { return nil }
            let length = Int(message[offset])
            if length == 0 {
                return (labels.joined(separator: "."), end ?? offset + 1)
            }
            if length & 0xC0 == 0xC0 {
                guard offset + 1 < message.count, jumps < 32 else { return nil }   // loops are malformed
                if end == nil { end = offset + 2 }
                offset = (length & 0x3F) << 8 | Int(message[offset + 1])
                jumps += 1
                continue
            }
            guard length < 64, offset + 1 + length <= message.count else { return nil }
            labels.append(String(decoding: message[(offset + 1)...(offset + length)], as: UTF8.self))
            offset += 1 + length
        }
    }
}
