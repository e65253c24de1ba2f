import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A small tmpfs of its own, filled up for real (writes fail with ENOSPC) by ballast files.
/// Mounting needs root (CAP_SYS_ADMIN): `TinyDisk.canMount` says whether this process may.
public final class TinyDisk {
    public let path: String
    private var ballast = 0

    public struct MountError: Error, CustomStringConvertible {
        public var description: String
    }

    /// Mounts a tmpfs of `megabytes` MiB on a fresh temporary directory.
    public init(megabytes: Int) throws {
        path = Fixtures.temporaryDirectory("tinydisk")
        guard mount("tmpfs", path, "tmpfs", 0, "size=\(megabytes)m,mode=0700") == 0 else {
            let reason = String(cString: strerror(errno))
            try? FileManager.default.removeItem(atPath: path)
            throw MountError(description: "cannot mount a tmpfs on \(path): \(reason)")
        }
    }

    /// True when this process may mount a tmpfs (tests that need one are skipped otherwise).
    public static let canMount: Bool = {
        guard let disk = try? TinyDisk(megabytes: 1) else { return false }
        disk.unmount()
        return true
    }()

    /// Bytes an unprivileged writer may still use.
    public var freeBytes: Int64 {
        var info = statvfs()
        guard statvfs(path, &info) == 0 else { return 0 }
        return Int64(info.f_bavail) * Int64(info.f_frsize)
    }

    /// Writes ballast until at most `bytes` are free; 0 fills the disk until it refuses more.
    public func fill(leaving bytes: Int64) throws {
        ballast += 1
        let file = "\(path)/ballast-\(ballast)"
        let fd = open(file, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        guard fd >= 0 else { throw MountError(description: "cannot create \(file): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        let chunk = [UInt8](repeating: 0xA5, count: 64 << 10)
        while freeBytes > bytes {
            let size = bytes == 0 ? chunk.count : Int(min(Int64(chunk.count), freeBytes - bytes))
            let n = chunk.withUnsafeBytes { write(fd, $0.baseAddress, size) }
            if n < 0 {
                if errno == ENOSPC { break }
                throw MountError(description: "writing \(file): \(String(cString: strerror(errno)))")
            }
        }
    }

    /// Deletes the ballast: the space returns.
    public func release() {
        for i in 0...ballast { try? FileManager.default.removeItem(atPath: "\(path)/ballast-\(i)") }
    }

    /// Unmounts (lazily, should something still hold a file open) and removes the directory.
    public func unmount() {
        _ = umount2(path, Int32(MNT_DETACH))
        try? FileManager.default.removeItem(atPath: path)
    }
}
