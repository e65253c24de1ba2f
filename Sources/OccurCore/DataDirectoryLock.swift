import Foundation

/// An exclusive lock on a data directory (`<data dir>/run.lock`, flock), held by `occur run`
/// for its whole life and by `occur keys rotate` while it re-seals: the two never overlap, and
/// two hosts never share a data directory. The kernel drops the lock when the process ends,
/// however it ends.
public final class DataDirectoryLock: Sendable {
    public let path: String
    private let descriptor: Int32

    /// Takes the lock or fails at once, saying that another process holds it.
    public init(dataDir: String, purpose: String) throws {
        try PrivateFiles.makeDirectory(dataDir)
        path = (dataDir as NSString).appendingPathComponent("run.lock")
        let fd = Glibc.open(path, O_RDWR | O_CREAT | O_CLOEXEC, PrivateFiles.fileMode)
        guard fd >= 0 else { throw ProtectionError("cannot open \(path): \(String(cString: strerror(errno)))") }
        _ = fchmod(fd, PrivateFiles.fileMode)
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let holder = (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
            close(fd)
            throw ProtectionError("the data directory \(dataDir) is in use (\(holder?.isEmpty == false ? holder! : "another process")); "
                                  + "\(purpose) needs it to itself")
        }
        let note = Array("pid \(getpid()): \(purpose)\n".utf8)
        _ = ftruncate(fd, 0)
        _ = note.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
        descriptor = fd
    }

    deinit { close(descriptor) }   // closing the descriptor releases the flock
}
