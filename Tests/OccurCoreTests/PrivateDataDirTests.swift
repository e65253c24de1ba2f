import Foundation
import Testing
import OccurTestSupport
@testable import OccurCore

/// The data dir is the service user's alone: after a real `occur run` under the loosest umask,
/// the directory and its subdirectories are 0700 and every file in it 0600; a data dir left
/// readable by others is tightened at start, with a log line.
@Suite(.serialized) struct PrivateDataDirTests {
    /// Every entry under `dir` (itself included) with its permission bits; symbolic links left out.
    func modes(under dir: String) -> [String: mode_t] {
        var result: [String: mode_t] = [:]
        var info = stat()
        if lstat(dir, &info) == 0 { result["."] = info.st_mode & 0o7777 }
        let walker = FileManager.default.enumerator(atPath: dir)
        while let relative = walker?.nextObject() as? String {
            guard lstat(dir + "/" + relative, &info) == 0, info.st_mode & S_IFMT != S_IFLNK else { continue }
            result[relative] = info.st_mode & 0o7777
        }
        return result
    }

    func isDirectory(_ path: String) -> Bool {
        var flag: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &flag) && flag.boolValue
    }

    /// A site whose run writes every kind of file: events, an enrolled face, snapshots, the data
    /// key, the first-run admin token, the lock.
    func site(_ label: String) throws -> String {
        let dir = Fixtures.temporaryDirectory(label)
        try FileManager.default.createDirectory(atPath: dir + "/face_db/obama", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: Fixtures.faceImage("obama.jpg"), toPath: dir + "/face_db/obama/obama.jpg")
        try """
            data_dir: ./data
            log_level: notice
            api: { address: "127.0.0.1:0" }
            recognition: { face_db: ./face_db, snapshot_cooldown: 0 }
            cameras:
              stills:
                source: \(Fixtures.facesDirectory)
            """.write(toFile: dir + "/occur.yaml", atomically: true, encoding: .utf8)
        try "plugins_dir: ./plugins\nplugins: {}\n".write(toFile: dir + "/plugins.yaml", atomically: true, encoding: .utf8)
        return dir
    }

    /// `occur run` under `umask 000`, so nothing but the host's own modes keeps files private.
    func runWithOpenUmask(in dir: String) throws -> (status: Int32, stdout: String, stderr: String) {
        try runProcess("/bin/sh", ["-c", "umask 000 && exec \"$0\" run", Fixtures.occurExecutable], currentDirectory: dir)
    }

    @Test func aRealRunUnderAnOpenUmaskLeavesOnlyOwnerOnlyFiles() throws {
        let dir = try site("private-run")
        let run = try runWithOpenUmask(in: dir)
        #expect(run.status == 0, "stderr: \(run.stderr)")
        let data = dir + "/data"
        let found = modes(under: data)
        // What a run writes is all there, so the modes below are checked on real files.
        for name in ["occur.db", "data.key", "admin.token", "run.lock"] { #expect(found[name] != nil, "no \(name)") }
        #expect(found.keys.contains { $0.hasPrefix("snapshots/") && $0.hasSuffix(".jpg.sealed") }, "no snapshots: \(found.keys)")
        for (relative, mode) in found {
            let expected: mode_t = isDirectory(data + "/" + relative) ? 0o700 : 0o600
            #expect(mode == expected, "\(relative) is \(String(mode, radix: 8)), not \(String(expected, radix: 8))")
        }
        // A loose file SQLite made next to the database would show here; while a database is
        // open its -wal and -shm files take the database's mode (checked in-process below).
    }

    @Test func theDatabaseWALAndSHMFilesArePrivateWhileOpen() throws {
        // Under the test process's umask (022: SQLite alone would make them 0644); changing the
        // umask here would loosen files that tests running beside this one create.
        let dir = Fixtures.temporaryDirectory("private-wal")
        let store = try EventStore(path: dir + "/data/occur.db")
        try store.pool.write { try $0.execute(sql: "CREATE TABLE t(x); INSERT INTO t VALUES (1)") }
        let found = modes(under: dir + "/data")
        #expect(found["."] == 0o700)
        for name in ["occur.db", "occur.db-wal", "occur.db-shm", "data.key"] {
            #expect(found[name] == 0o600, "\(name): \(found[name].map { String($0, radix: 8) } ?? "missing")")
        }
    }

    @Test func aLooseDataDirIsTightenedAtStartWithALogLine() throws {
        let dir = try site("private-loose")
        let first = try runWithOpenUmask(in: dir)
        #expect(first.status == 0, "stderr: \(first.stderr)")
        // An operator (or an older version) opened it up.
        let data = dir + "/data"
        #expect(chmod(data, 0o755) == 0 && chmod(data + "/occur.db", 0o644) == 0 && chmod(data + "/data.key", 0o640) == 0)
        let snapshotDay = try #require(modes(under: data).keys.first { $0.hasPrefix("snapshots/") && isDirectory(data + "/" + $0) })
        #expect(chmod(data + "/" + snapshotDay, 0o775) == 0)

        let second = try runWithOpenUmask(in: dir)
        #expect(second.status == 0, "stderr: \(second.stderr)")
        #expect(second.stderr.contains("readable by others and are now owner-only"), "stderr: \(second.stderr)")
        #expect(second.stderr.contains("occur.db"))
        let found = modes(under: data)
        #expect(found["."] == 0o700 && found["occur.db"] == 0o600 && found["data.key"] == 0o600 && found[snapshotDay] == 0o700)
        // Nothing to tighten: no line.
        let third = try runWithOpenUmask(in: dir)
        #expect(third.status == 0)
        #expect(!third.stderr.contains("now owner-only"), "stderr: \(third.stderr)")
    }
}
