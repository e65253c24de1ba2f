import Crypto
import Foundation

/// Biometric data at rest — face embeddings in the database, face crops and annotated
/// snapshots on disk — sealed with AES-256-GCM (swift-crypto) under the data key.
///
/// The key is 32 random bytes, read from the environment variable OCCUR_DATA_KEY (base64)
/// when set, else from `<data dir>/data.key` (mode 0600, created on first use; one base64 key
/// per line, the first one seals, the others only open — they are there while `occur keys
/// rotate` runs). Without the key sealed data cannot be read by anyone, Occur included.
///
/// A sealed blob is "OCE1", the key's id (4 bytes: the start of the key's SHA-256), then
/// AES-GCM's nonce (12 bytes), ciphertext and tag (16 bytes). The purpose ("embedding",
/// "image") is authenticated too, so a sealed crop cannot pass as an embedding. Data written
/// before encryption was on (no "OCE1") is read as it is; `occur keys rotate` seals it.
public final class DataProtection: Sendable {
    public enum Purpose: String, Sendable {
        case embedding, image
        var associatedData: Data { Data("occur \(rawValue) v1".utf8) }
    }

    /// Where the keys came from.
    public enum KeySource: Sendable, Equatable, CustomStringConvertible {
        case none
        case environment
        case file(String)
        public var description: String {
            switch self {
            case .none: "no key"
            case .environment: "the environment variable \(DataProtection.environmentVariable)"
            case .file(let path): path
            }
        }
    }

    public static let environmentVariable = "OCCUR_DATA_KEY"
    public static let keyFileName = "data.key"
    public static let sealedExtension = ".sealed"
    static let magic = Data("OCE1".utf8)

    /// Key bytes by id; `current` seals. Empty when encryption is off and no key exists.
    private let keys: [UInt32: Data]
    private let current: UInt32?
    public let source: KeySource

    /// Seals new data. False when encryption is off in the configuration.
    public var sealsNewData: Bool { current != nil }

    init(keys: [SymmetricKey], source: KeySource, seal: Bool) {
        var byID: [UInt32: Data] = [:]
        for key in keys { byID[Self.id(of: key)] = key.withUnsafeBytes { Data($0) } }
        self.keys = byID
        current = seal ? keys.first.map(Self.id(of:)) : nil
        self.source = source
    }

    /// No keys: seals nothing, reads only plain data.
    public static let off = DataProtection(keys: [], source: .none, seal: false)

    /// The data key for `dataDir`: from OCCUR_DATA_KEY, else the key file, which is created
    /// (0600) when `seal` is on and it does not exist yet. With `seal` off, an existing key is
    /// still loaded so that sealed data stays readable.
    public static func load(dataDir: String, seal: Bool,
                            environment: [String: String] = ProcessInfo.processInfo.environment) throws -> DataProtection {
        if let value = environment[environmentVariable] {
            let key = try parseKey(value, origin: environmentVariable)
            return DataProtection(keys: [key], source: .environment, seal: seal)
        }
        let path = (dataDir as NSString).appendingPathComponent(keyFileName)
        if FileManager.default.fileExists(atPath: path) {
            return DataProtection(keys: try readKeyFile(path), source: .file(path), seal: seal)
        }
        guard seal else { return .off }
        let key = SymmetricKey(size: .bits256)
        try PrivateFiles.makeDirectory(dataDir)
        do {
            try writeKeyFile(path, keys: [key], exclusive: true)
        } catch where FileManager.default.fileExists(atPath: path) {
            return DataProtection(keys: try readKeyFile(path), source: .file(path), seal: seal)   // another process made it first
        }
        return DataProtection(keys: [key], source: .file(path), seal: seal)
    }

    // MARK: sealing

    public func seal(_ plain: Data, _ purpose: Purpose) throws -> Data {
        guard let current, let key = keys[current] else { return plain }
        let box = try AES.GCM.seal(plain, using: SymmetricKey(data: key), authenticating: purpose.associatedData)
        guard let combined = box.combined else { throw ProtectionError("AES-GCM gave no combined box") }
        var out = Self.magic
        withUnsafeBytes(of: current.bigEndian) { out.append(contentsOf: $0) }
        out.append(combined)
        return out
    }

    /// The plain bytes of `data`: opened when sealed, as it is when it was never sealed.
    public func open(_ data: Data, _ purpose: Purpose) throws -> Data {
        guard Self.isSealed(data) else { return data }
        let id = data.dropFirst(4).prefix(4).reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        guard let key = keys[id] else {
            throw ProtectionError("sealed with key \(String(id, radix: 16)), which \(source) does not hold: "
                                  + "without that key this data cannot be read")
        }
        do {
            let box = try AES.GCM.SealedBox(combined: data.dropFirst(8))
            return try AES.GCM.open(box, using: SymmetricKey(data: key), authenticating: purpose.associatedData)
        } catch {
            throw ProtectionError("sealed \(purpose.rawValue) does not open with key \(String(id, radix: 16)): "
                                  + "it was changed or is not \(purpose.rawValue) data")
        }
    }

    public static func isSealed(_ data: Data) -> Bool {
        data.count >= 8 + 12 + 16 && data.prefix(4) == magic
    }

    /// The id of the key that sealed `data`, nil for plain data.
    public static func keyID(of data: Data) -> UInt32? {
        isSealed(data) ? data.dropFirst(4).prefix(4).reduce(UInt32(0)) { $0 << 8 | UInt32($1) } : nil
    }

    public var currentKeyID: UInt32? { current }

    // MARK: files

    /// The JPEG bytes of an image file the SnapshotStore wrote, sealed or not.
    public func readImage(at path: String) throws -> Data {
        try open(Data(contentsOf: URL(fileURLWithPath: path)), .image)
    }

    // MARK: keys

    static func id(of key: SymmetricKey) -> UInt32 {
        SHA256.hash(data: key.withUnsafeBytes { Data($0) }).prefix(4).reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
    }

    static func parseKey(_ text: String, origin: String) throws -> SymmetricKey {
        guard let bytes = Data(base64Encoded: text.trimmingCharacters(in: .whitespacesAndNewlines)), bytes.count == 32 else {
            throw ProtectionError("\(origin): expected 32 bytes in base64 (e.g. `head -c 32 /dev/urandom | base64`)")
        }
        return SymmetricKey(data: bytes)
    }

    static func readKeyFile(_ path: String) throws -> [SymmetricKey] {
        var info = stat()
        guard stat(path, &info) == 0 else { throw ProtectionError("cannot read the data key \(path): \(String(cString: strerror(errno)))") }
        if info.st_mode & 0o077 != 0 {
            throw ProtectionError("the data key \(path) is readable or writable by others (mode "
                                  + String(info.st_mode & 0o777, radix: 8) + "): run `chmod 600 \(path)`")
        }
        let text = try String(contentsOfFile: path, encoding: .utf8)
        var keys: [SymmetricKey] = []
        for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
            keys.append(try parseKey(trimmed, origin: "\(path):\(number + 1)"))
        }
        if keys.isEmpty { throw ProtectionError("the data key \(path) holds no key") }
        return keys
    }

    /// Writes the key file (mode 0600, crash-safe: PrivateFiles.write); `exclusive` fails if one exists.
    static func writeKeyFile(_ path: String, keys: [SymmetricKey], exclusive: Bool = false) throws {
        var text = """
            # Occur data key (AES-256-GCM). It seals face crops, snapshots and embeddings.
            # Losing it makes them unreadable; anyone holding it can read them. Keep a copy offline.
            # The first key seals; keys after it only open data (kept while `occur keys rotate` runs).

            """
        for key in keys { text += key.withUnsafeBytes { Data($0) }.base64EncodedString() + "\n" }
        try PrivateFiles.write(Data(text.utf8), to: path, exclusive: exclusive, describing: "the data key")
    }
}

public struct ProtectionError: Error, CustomStringConvertible, Sendable {
    public var message: String
    /// The errno of the failed system call, when one failed (ENOSPC: the disk is full).
    public var code: Int32?
    init(_ message: String, code: Int32? = nil) {
        self.message = message
        self.code = code
    }
    public var description: String { message }
}
