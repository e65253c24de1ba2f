import Foundation

/// The data dir holds who was seen on which camera and when: it is the service user's alone.
/// The directory and every directory under it are mode 0700, every file 0600, whatever the
/// umask: each is created with that mode and set to it explicitly (a umask can only take bits
/// away). SQLite gives the -wal and -shm files the database file's mode, so a database made
/// here (privateDatabaseFile) keeps them private too.
public enum PrivateFiles {
    public static let directoryMode: mode_t = 0o700
    public static let fileMode: mode_t = 0o600

    /// Creates `path` (and missing parents) when it does not exist; the directories made here
    /// and `path` itself end up 0700. An existing `path` is not changed (tighten does that).
    public static func makeDirectory(_ path: String) throws {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else { throw ProtectionError("\(path) exists and is not a directory") }
            return
        }
        let parent = (path as NSString).deletingLastPathComponent
        if !parent.isEmpty, parent != path { try makeDirectory(parent) }
        guard mkdir(path, directoryMode) == 0 || errno == EEXIST else {
            throw ProtectionError("cannot create the directory \(path): \(String(cString: strerror(errno)))", code: errno)
        }
        guard chmod(path, directoryMode) == 0 else {
            throw ProtectionError("cannot make \(path) private (chmod 700): \(String(cString: strerror(errno)))")
        }
    }

    /// Makes `dir` and everything in it owner-only: directories 0700, files 0600 (symbolic
    /// links are not followed). Creates `dir` when missing. Returns the paths it changed, for
    /// the start-up log line; an already private dir costs one walk and changes nothing.
    @discardableResult
    public static func tighten(_ dir: String) throws -> [String] {
        try makeDirectory(dir)
        var changed: [String] = []
        func fix(_ path: String, _ mode: mode_t) throws {
            var info = stat()
            guard lstat(path, &info) == 0 else { return }   // gone meanwhile
            guard info.st_mode & S_IFMT != S_IFLNK, info.st_mode & 0o777 != mode else { return }
            guard chmod(path, mode) == 0 else {
                throw ProtectionError("cannot make \(path) private (chmod \(String(mode, radix: 8))): "
                                      + String(cString: strerror(errno)))
            }
            changed.append(path)
        }
        try fix(dir, directoryMode)
        guard let walker = FileManager.default.enumerator(atPath: dir) else { return changed }
        while let relative = walker.nextObject() as? String {
            let path = (dir as NSString).appendingPathComponent(relative)
            let type = walker.fileAttributes?[.type] as? FileAttributeType
            switch type {
            case .typeDirectory?: try fix(path, directoryMode)
            case .typeSymbolicLink?: continue
            default: try fix(path, fileMode)
            }
        }
        return changed
    }

    /// Creates the SQLite database file at `path` with mode 0600 before SQLite opens it (SQLite
    /// would make it 0644 less the umask, and its -wal and -shm files copy that mode); an
    /// existing file is set to 0600.
    public static func prepareDatabaseFile(_ path: String) throws {
        let fd = Glibc.open(path, O_RDWR | O_CREAT | O_CLOEXEC, fileMode)
        guard fd >= 0 else { throw ProtectionError("cannot create \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        guard fchmod(fd, fileMode) == 0 else {
            throw ProtectionError("cannot make \(path) private (chmod 600): \(String(cString: strerror(errno)))")
        }
    }

    /// Writes `bytes` to `path` with mode 0600 from the start: into a temporary file, synced,
    /// then renamed over `path` (or, when `exclusive`, linked to it, failing if `path` exists),
    /// so that a crash leaves either the old file or the new one, never a part or a readable moment.
    /// `sync: false` skips the fsync (snapshots: many, and cheap to lose in a crash).
    public static func write(_ bytes: Data, to path: String, exclusive: Bool = false, sync: Bool = true,
                             describing what: String) throws {
        func failure(_ doing: String, _ code: Int32 = errno) -> ProtectionError {
            ProtectionError("cannot \(doing): \(String(cString: strerror(code)))", code: code)
        }
        let temporary = path + ".new"
        unlink(temporary)
        let fd = Glibc.open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, fileMode)
        guard fd >= 0 else { throw failure("create \(temporary)") }
        var code: Int32 = 0
        bytes.withUnsafeBytes { raw in
            var written = 0
            while written < raw.count, code == 0 {
                let n = Glibc.write(fd, raw.baseAddress! + written, raw.count - written)
                if n >= 0 { written += n } else if errno != EINTR { code = errno }
            }
        }
        if code == 0, fchmod(fd, fileMode) != 0 || (sync && fsync(fd) != 0) { code = errno }
        if close(fd) != 0, code == 0 { code = errno }
        guard code == 0 else {
            unlink(temporary)
            throw failure("write \(temporary)", code)
        }
        if exclusive {
            let linked = link(temporary, path) == 0, code = errno
            unlink(temporary)
            guard linked else { throw failure("create \(what) \(path)", code) }
        } else if rename(temporary, path) != 0 {
            let code = errno
            unlink(temporary)
            throw failure("replace \(what) \(path)", code)
        }
    }
}
