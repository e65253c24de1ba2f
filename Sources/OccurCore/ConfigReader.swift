import Foundation
import Yams

/// A YAML node with the file and key path it came from, so every error can say where.
/// Yams parses; this type turns nodes into typed values and rejects unknown keys.
public struct ConfigNode {
    public let node: Node
    public let file: String
    public let path: String
    /// Where this node's key stands, for errors about the key itself.
    var keyMark: Mark? = nil

    /// Parses `text` (the contents of `file`). An empty document is an empty mapping.
    public static func parse(_ text: String, file: String) throws -> ConfigNode {
        do {
            let node = try Yams.compose(yaml: text) ?? Node.mapping(Node.Mapping([]))
            return ConfigNode(node: node, file: file, path: "")
        } catch let error as YamlError {
            throw ConfigError.fromYams(error, file: file)
        }
    }

    public static func load(contentsOf file: String) throws -> ConfigNode {
        guard let data = FileManager.default.contents(atPath: file) else {
            throw ConfigError(file: file, keyPath: "", message: "cannot read the file (does it exist?)")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            let bad = firstInvalidUTF8(in: data)
            throw ConfigError(file: file, line: bad?.line, column: bad?.column, keyPath: "",
                              message: "the file is not UTF-8 text" + (bad.map { String(format: " (byte 0x%02X)", $0.byte) } ?? ""))
        }
        return try parse(text, file: file)
    }

    public func error(_ message: String) -> ConfigError {
        ConfigError(file: file, line: node.mark?.line, column: node.mark?.column, keyPath: path, message: message)
    }

    /// An error located at this node's key (unknown or duplicate keys).
    public func keyError(_ message: String) -> ConfigError {
        let mark = keyMark ?? node.mark
        return ConfigError(file: file, line: mark?.line, column: mark?.column, keyPath: path, message: message)
    }

    func child(_ node: Node, key: String, keyMark: Mark?) -> ConfigNode {
        ConfigNode(node: node, file: file, path: path.isEmpty ? key : "\(path).\(key)", keyMark: keyMark)
    }

    // MARK: Scalars

    private var scalar: Node.Scalar? {
        if case let .scalar(s) = node { return s }
        return nil
    }

    public func string() throws -> String {
        guard let s = scalar, node.null == nil || s.style != .plain else { throw error("expected a string") }
        return s.string
    }

    /// A finite number: `.nan` and `.inf` are refused, so no setting can hold one.
    public func double() throws -> Double {
        guard scalar != nil, let value = node.float ?? node.int.map(Double.init) else {
            throw error("expected a number, got '\(scalar?.string ?? describeKind)'")
        }
        guard value.isFinite else { throw error("expected a finite number, got '\(scalar?.string ?? "")'") }
        return value
    }

    public func int() throws -> Int {
        guard scalar != nil, let value = node.int else {
            throw error("expected a whole number, got '\(scalar?.string ?? describeKind)'")
        }
        return value
    }

    public func bool() throws -> Bool {
        guard scalar != nil, let value = node.bool else {
            throw error("expected true or false, got '\(scalar?.string ?? describeKind)'")
        }
        return value
    }

    /// A whole number within bounds.
    public func int(atLeast low: Int, atMost high: Int = .max) throws -> Int {
        let value = try int()
        guard value >= low, value <= high else {
            throw error(high == .max ? "must be \(low) or more" : "must be between \(low) and \(high)")
        }
        return value
    }

    /// A number within bounds; `above` excludes its bound.
    public func double(atLeast low: Double? = nil, above: Double? = nil, atMost high: Double? = nil) throws -> Double {
        let value = try double()
        if let low, value < low { throw error("must be \(low) or more") }
        if let above, value <= above { throw error("must be above \(above)") }
        if let high, value > high { throw error("must be at most \(high)") }
        return value
    }

    /// The longest duration any setting takes: about 31 years. A longer one would overflow the
    /// host's nanosecond clocks (Int64) where it is used.
    public static let maxSeconds: Double = 1e9

    /// A duration in seconds within bounds, never above `maxSeconds`.
    public func seconds(atLeast low: Double? = nil, above: Double? = nil, atMost high: Double = maxSeconds) throws -> Double {
        try double(atLeast: low, above: above, atMost: min(high, Self.maxSeconds))
    }

    /// One of `allowed`, spelled exactly.
    public func choice(_ allowed: [String]) throws -> String {
        let value = try string()
        guard allowed.contains(value) else {
            throw error("'\(value)' is not one of: \(allowed.joined(separator: ", "))")
        }
        return value
    }

    public func list() throws -> [ConfigNode] {
        guard case let .sequence(seq) = node else { throw error("expected a list, got \(describeKind)") }
        return seq.enumerated().map { index, item in
            ConfigNode(node: item, file: file, path: "\(path)[\(index)]")
        }
    }

    public func stringList() throws -> [String] {
        try list().map { try $0.string() }
    }

    /// True for an empty value (`key:` with nothing after it, `~` or `null`).
    public var isNull: Bool {
        if case let .scalar(s) = node { return s.style == .plain && node.null != nil }
        return false
    }

    /// The entries of a mapping in file order (none for an empty value).
    public func entries() throws -> [(key: String, value: ConfigNode)] {
        if isNull { return [] }
        guard case let .mapping(mapping) = node else { throw error("expected a mapping, got \(describeKind)") }
        return try mapping.map { pair in
            guard let key = pair.key.string else {
                throw ConfigNode(node: pair.key, file: file, path: path).error("keys must be strings")
            }
            return (key, child(pair.value, key: key, keyMark: pair.key.mark))
        }
    }

    /// Reads the keys of a mapping; `finish()` rejects the ones nobody asked for.
    public func fields() throws -> Fields { try Fields(self) }

    var describeKind: String {
        switch node {
        case .scalar: return "a scalar"
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        case .alias: return "an alias"
        }
    }

    /// Values one `jsonValue()` converts at most. YAML aliases can repeat a subtree inside
    /// itself ("billion laughs": ten lines that expand to 10^9 values); this stops that.
    public static let maxJSONValues = 100_000

    /// The node as a JSON value (for plugin config): mappings, lists, and typed scalars.
    public func jsonValue() throws -> Any {
        var budget = Self.maxJSONValues
        return try jsonValue(budget: &budget)
    }

    private func jsonValue(budget: inout Int) throws -> Any {
        budget -= 1
        guard budget >= 0 else {
            throw error("more than \(Self.maxJSONValues) values (YAML aliases repeating one another?)")
        }
        switch node {
        case .mapping:
            var object: [String: Any] = [:]
            for (key, value) in try entries() { object[key] = try value.jsonValue(budget: &budget) }
            return object
        case .sequence:
            return try list().map { try $0.jsonValue(budget: &budget) }
        case let .scalar(s):
            if s.style == .plain {
                if node.null != nil { return NSNull() }
                if let b = node.bool { return b }
                if let i = node.int { return i }
                if let d = node.float, d.isFinite { return d }
            }
            return s.string
        case .alias:
            throw error("YAML aliases are not supported here")
        }
    }

    /// The keys of one mapping, read one by one.
    public final class Fields {
        public let owner: ConfigNode
        private var values: [String: ConfigNode] = [:]
        private var order: [String] = []
        private var used: Set<String> = []

        init(_ owner: ConfigNode) throws {
            self.owner = owner
            for (key, value) in try owner.entries() {
                if values[key] != nil { throw value.keyError("duplicate key") }
                values[key] = value
                order.append(key)
            }
        }

        public func optional(_ key: String) -> ConfigNode? {
            used.insert(key)
            return values[key]
        }

        public func required(_ key: String) throws -> ConfigNode {
            guard let value = optional(key) else {
                let where_ = owner.path.isEmpty ? key : "\(owner.path).\(key)"
                throw ConfigError(file: owner.file, line: owner.node.mark?.line, column: owner.node.mark?.column,
                                  keyPath: where_, message: "this key is required")
            }
            return value
        }

        public func optional<T>(_ key: String, _ read: (ConfigNode) throws -> T) throws -> T? {
            try optional(key).map(read)
        }

        /// Replaces `value` with the key's value when the key is present.
        public func read<T>(_ key: String, into value: inout T, _ parse: (ConfigNode) throws -> T) throws {
            if let node = optional(key) { value = try parse(node) }
        }

        /// Fails on the first key that was never read.
        public func finish() throws {
            for key in order where !used.contains(key) {
                let value = values[key]!
                let known = used.sorted().joined(separator: ", ")
                throw value.keyError("unknown key (known here: \(known))")
            }
        }
    }
}

/// Where the first byte that is not UTF-8 stands: line and column (in bytes), both from 1.
func firstInvalidUTF8(in data: Data) -> (line: Int, column: Int, byte: UInt8)? {
    var parser = Unicode.UTF8.ForwardParser()
    var bytes = data.makeIterator()
    var offset = 0, line = 1, lineStart = 0
    while true {
        switch parser.parseScalar(from: &bytes) {
        case let .valid(scalar):
            if scalar.count == 1, scalar.first == UInt8(ascii: "\n") { line += 1; lineStart = offset + 1 }
            offset += scalar.count
        case .error:
            return (line, offset - lineStart + 1, data[data.startIndex + offset])
        case .emptyInput:
            return nil
        }
    }
}

extension ConfigError {
    static func fromYams(_ error: YamlError, file: String) -> ConfigError {
        switch error {
        case let .reader(problem, offset, value, yaml):
            // libyaml counts in the text; its line is worked out here from the offset.
            var line: Int?, column: Int?
            if let offset {
                var (l, c) = (1, 1)
                for character in yaml.prefix(offset) {
                    if character.isNewline { (l, c) = (l + 1, 1) } else { c += 1 }
                }
                (line, column) = (l, c)
            }
            let character = value >= 0 ? String(format: " (U+%04X)", value) : ""
            return ConfigError(file: file, line: line, column: column, keyPath: "", message: "invalid YAML: \(problem)\(character)")
        case let .scanner(context, problem, mark, _), let .parser(context, problem, mark, _):
            let what = [context?.text, problem].compactMap { $0 }.joined(separator: ": ")
            return ConfigError(file: file, line: mark.line, column: mark.column, keyPath: "",
                               message: "invalid YAML: \(what)")
        case let .composer(context, problem, mark, _):
            return ConfigError(file: file, line: mark.line, column: mark.column, keyPath: "",
                               message: "invalid YAML: \([context?.text, problem].compactMap { $0 }.joined(separator: ": "))")
        case let .duplicatedKeysInMapping(duplicates, context):
            return ConfigError(file: file, line: context.mark.line, column: context.mark.column, keyPath: "",
                               message: "duplicate keys: \(duplicates.joined(separator: ", "))")
        default:
            return ConfigError(file: file, keyPath: "", message: "invalid YAML: \(error)")
        }
    }
}
