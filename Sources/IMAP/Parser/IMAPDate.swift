/// IMAP date-time (`"17-Jul-1996 02:44:25 -0700"`, RFC 3501 §9) to and from Unix seconds.
public enum IMAPDate {
    static let months = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
    static let monthNames = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    /// Parses a date-time (day may be space-padded); nil when malformed.
    public static func parse(_ bytes: [UInt8]) -> Int64? {
        let text = String(decoding: bytes, as: UTF8.self).trimmingLeadingSpaces()
        let parts = text.split(separator: " ")
        guard parts.count == 3 else { return nil }
        let dmy = parts[0].split(separator: "-")
        let hms = parts[1].split(separator: ":")
        guard dmy.count == 3, hms.count == 3, let day = Int(dmy[0]), let year = Int(dmy[2]),
              let month = months.firstIndex(of: dmy[1].uppercased()), let h = Int(hms[0]), let m = Int(hms[1]), let s = Int(hms[2]),
              day >= 1, day <= 31, h < 24, m < 60, s <= 60, year >= 1900, year < 10000 else { return nil }
        let zone = parts[2]
        guard zone.count == 5, let sign = zone.first, sign == "+" || sign == "-", let zh = Int(zone.dropFirst().prefix(2)), let zm = Int(zone.suffix(2)) else { return nil }
        let offset = (zh * 3600 + zm * 60) * (sign == "-" ? -1 : 1)
        return daysFromCivil(year: year, month: month + 1, day: day) * 86400 + Int64(h * 3600 + m * 60 + s) - Int64(offset)
    }

    /// Formats Unix seconds as a date-time in UTC, for APPEND.
    public static func format(_ seconds: Int64) -> String {
        let days = seconds >= 0 ? seconds / 86400 : (seconds - 86399) / 86400
        let rest = seconds - days * 86400
        let (y, mo, d) = civilFromDays(days)
        func two(_ v: Int64) -> String { v < 10 ? "0\(v)" : "\(v)" }
        let day = d < 10 ? " \(d)" : "\(d)"
        return "\(day)-\(monthNames[Int(mo) - 1])-\(y) \(two(rest / 3600)):\(two(rest % 3600 / 60)):\(two(rest % 60)) +0000"
    }

    // Howard Hinnant's civil-date algorithms (public domain).
    static func daysFromCivil(year: Int, month: Int, day: Int) -> Int64 {
        let y = Int64(month <= 2 ? year - 1 : year)
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = Int64((month + 9) % 12)
        let doy = (153 * mp + 2) / 5 + Int64(day) - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146097 + doe - 719468
    }

    static func civilFromDays(_ days: Int64) -> (Int64, Int64, Int64) {
        let z = days + 719468
        let era = (z >= 0 ? z : z - 146096) / 146097
        let doe = z - era * 146097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (m <= 2 ? 1 : 0), m, d)
    }
}

extension String {
    fileprivate func trimmingLeadingSpaces() -> String { String(drop(while: { $0 == " " })) }
}
