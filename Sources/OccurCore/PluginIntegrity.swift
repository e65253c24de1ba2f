import Crypto
import Foundation

/// What the host checks about a plugin library before it dlopens it: that no other user can
/// have replaced it, and, when plugins.yaml pins one, that its SHA-256 is the pinned one.
///
/// Refused: the library file or the directory holding it when group- or world-writable
/// (S_IWGRP, S_IWOTH; a sticky bit does not help: others could still add the file), or owned
/// by a user other than root or the one the host runs as. Symlinks are followed: the
/// directory holding the link, the final target file and the target's directory must all
/// pass (the link's own mode means nothing on Linux). Directories above those are not checked.
public enum PluginIntegrity {
    static func check(path: String, sha256 expected: String?) throws(PluginLoadError) {
        var info = stat()
        guard stat(path, &info) == 0 else { throw .missingLibrary(path: path) }
        var checked = [(path as NSString).deletingLastPathComponent]
        var target = path
        var link = stat()
        if lstat(path, &link) == 0, link.st_mode & S_IFMT == S_IFLNK, let resolved = realpath(path, nil) {
            target = String(cString: resolved)
            free(resolved)
            checked.append((target as NSString).deletingLastPathComponent)
        }
        checked.append(target)
        for file in checked { try checkOwnership(of: file, library: path) }
        if let expected {
            let found: String
            do { found = try sha256(ofFile: path) } catch {
                throw .unreadable(path: path, message: "\(error)")
            }
            guard found == expected else { throw .checksumMismatch(path: path, expected: expected, found: found) }
        }
    }

    /// `file` (the library, or a directory on its way) may be changed only by root or us.
    private static func checkOwnership(of file: String, library: String) throws(PluginLoadError) {
        var info = stat()
        guard stat(file.isEmpty ? "." : file, &info) == 0 else { throw .missingLibrary(path: library) }
        let mode = UInt32(info.st_mode) & 0o7777
        if mode & UInt32(S_IWGRP | S_IWOTH) != 0 {
            throw .writableByOthers(path: library, checked: file, mode: mode)
        }
        if info.st_uid != 0 && info.st_uid != geteuid() {
            throw .ownedByAnotherUser(path: library, checked: file, owner: info.st_uid)
        }
    }

    /// Lower-case hex, as `sha256sum` prints it.
    public static func sha256(ofFile path: String) throws -> String {
        let data = try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped)
        return SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined()
    }
}

/// `0755`-style permission bits.
func octalMode(_ mode: UInt32) -> String {
    let digits = String(mode & 0o7777, radix: 8)
    return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
}

/// `alice (uid 1001)`, or `uid 1001` when the user database does not know it.
func userName(_ uid: uid_t) -> String {
    guard let entry = getpwuid(uid), let name = entry.pointee.pw_name else { return "uid \(uid)" }
    return "\(String(cString: name)) (uid \(uid))"
}
