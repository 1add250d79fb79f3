#if canImport(Glibc)
import Glibc
#endif

/// Parsers for the value syntaxes of the contract (durations, sizes, paths).
public enum SettingValues {
    /// A duration: an integer (seconds) or a number with a unit `s`, `m`, `h`, `d`
    /// ("90s", "5m", "1.5h", "90d"). Returns seconds, nil when malformed or not positive.
    public static func duration(_ value: TOMLValue) -> Int? {
        switch value {
        case .integer(let n): return n > 0 && n <= Int64(Int32.max) ? Int(n) : nil
        case .string(let s):
            let t = s.trimmingSpaces()
            guard let unit = t.last else { return nil }
            let factor: Double
            switch unit {
            case "s": factor = 1
            case "m": factor = 60
            case "h": factor = 3600
            case "d": factor = 86400
            default:
                guard let n = Int(t), n > 0 else { return nil }
                return n
            }
            guard let n = Double(t.dropLast().trimmingSpaces()), n > 0, n.isFinite else { return nil }
            let seconds = (n * factor).rounded()
            return seconds >= 1 && seconds <= Double(Int32.max) ? Int(seconds) : nil
        default: return nil
        }
    }

    /// A size: bytes, or a number with `K`, `M`, `G` (1024-based; a trailing `B`/`iB` is
    /// accepted). Returns bytes, nil when malformed or not positive.
    public static func size(_ value: TOMLValue) -> Int64? {
        switch value {
        case .integer(let n): return n > 0 ? n : nil
        case .string(let s):
            var t = Substring(s.trimmingSpaces().uppercased())
            if t.hasSuffix("IB") { t = t.dropLast(2) } else if t.hasSuffix("B") { t = t.dropLast() }
            var factor: Double = 1
            switch t.last {
            case "K": factor = 1024
            case "M": factor = 1024 * 1024
            case "G": factor = 1024 * 1024 * 1024
            default: break
            }
            if factor > 1 { t = t.dropLast() }
            guard let n = Double(String(t).trimmingSpaces()), n > 0, n.isFinite, n * factor < 9e18 else { return nil }
            return Int64((n * factor).rounded())
        default: return nil
        }
    }

    /// Expands a leading `~`, and `$NAME` / `${NAME}` from the environment. The XDG base
    /// directory variables fall back to their specified defaults when unset.
    /// - Throws: the name of a variable that is neither set nor an XDG one.
    public static func expandPath(_ path: String, environment: [String: String]) throws(UnsetVariable) -> String {
        var out = ""
        var rest = Substring(path)
        if rest == "~" || rest.hasPrefix("~/") {
            out = try variable("HOME", environment)
            rest = rest.dropFirst()
        }
        while let dollar = rest.firstIndex(of: "$") {
            out += rest[..<dollar]
            var after = rest[rest.index(after: dollar)...]
            let name: Substring
            if after.first == "{", let close = after.firstIndex(of: "}") {
                name = after[after.index(after: after.startIndex)..<close]
                after = after[after.index(after: close)...]
            } else {
                let end = after.firstIndex(where: { !($0.isLetter || $0.isNumber || $0 == "_") || !$0.isASCII }) ?? after.endIndex
                name = after[..<end]
                after = after[end...]
            }
            if name.isEmpty {
                out += "$"
            } else {
                out += try variable(String(name), environment)
            }
            rest = after
        }
        return out + rest
    }

    /// An environment variable referenced by a path is not set.
    public struct UnsetVariable: Error, Sendable { public var name: String }

    static func variable(_ name: String, _ env: [String: String]) throws(UnsetVariable) -> String {
        if let v = env[name], !v.isEmpty { return v }
        let home = env["HOME"].flatMap { $0.isEmpty ? nil : $0 }
        let defaults = ["XDG_CONFIG_HOME": "/.config", "XDG_STATE_HOME": "/.local/state",
                        "XDG_DATA_HOME": "/.local/share", "XDG_CACHE_HOME": "/.cache"]
        if let suffix = defaults[name], let home { return home + suffix }
        if name == "XDG_RUNTIME_DIR" { return "/run/user/\(getuid())" }
        throw UnsetVariable(name: name)
    }

    /// `$XDG_CONFIG_HOME/mailmirror/config.toml`.
    public static func defaultConfigPath(environment: [String: String]) -> String {
        ((try? variable("XDG_CONFIG_HOME", environment)) ?? "/etc/xdg") + "/mailmirror/config.toml"
    }

    /// `$XDG_STATE_HOME/mailmirror`.
    public static func defaultStateDirectory(environment: [String: String]) -> String {
        ((try? variable("XDG_STATE_HOME", environment)) ?? "/var/lib") + "/mailmirror"
    }

    /// The process environment as a dictionary.
    public static func processEnvironment() -> [String: String] {
        var env: [String: String] = [:]
        var p = environ
        while let entry = p.pointee {
            let s = String(cString: entry)
            if let eq = s.firstIndex(of: "=") {
                env[String(s[..<eq])] = String(s[s.index(after: eq)...])
            }
            p += 1
        }
        return env
    }
}

extension StringProtocol {
    func trimmingSpaces() -> String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" { s = s.dropFirst() }
        while let l = s.last, l == " " || l == "\t" { s = s.dropLast() }
        return String(s)
    }
}
