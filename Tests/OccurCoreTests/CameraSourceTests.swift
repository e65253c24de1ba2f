import Foundation
import Testing
import OccurTestSupport
@testable import OccurCore

@Suite struct CameraSourceTests {
    func source(_ camera: CameraConfiguration) throws -> CameraSource {
        try CameraSource(configuration: camera, logger: Fixtures.logger) { false }
    }

    func drain(_ s: CameraSource) -> [SourceFrame] {
        var frames: [SourceFrame] = []
        while let f = s.next() { frames.append(f) }
        return frames
    }

    @Test func kindsAreRecognised() {
        #expect(SourceKind.of("rtsp://cam/1") == .stream)
        #expect(SourceKind.of("http://cam/mjpg") == .stream)
        #expect(SourceKind.of("/dev/video0") == .device)
        #expect(SourceKind.of("0") == .device)
        #expect(SourceKind.of(Fixtures.facesDirectory) == .imageDirectory)
        #expect(SourceKind.of(Fixtures.faceImage("obama.jpg")) == .image)
        #expect(SourceKind.of(Fixtures.openCVData + "/vtest.avi") == .videoFile)
    }

    @Test func aVideoFileEndsCleanlyAndEveryNFramesSkips() throws {
        var camera = CameraConfiguration(id: "v", source: Fixtures.openCVData + "/Megamind.avi")
        camera.everyNFrames = 10
        let frames = drain(try source(camera))
        #expect(frames.count == 27)  // 270 frames, one in ten
        #expect(frames.map(\.index) == Array(stride(from: Int64(0), to: 270, by: 10)))
        let times = frames.map(\.timestampNanos)
        #expect(zip(times, times.dropFirst()).allSatisfy { $0 < $1 })
    }

    @Test func mediaTimeNeverGoesBackwardsEvenAtTheEndOfAFile() throws {
        let frames = drain(try source(CameraConfiguration(id: "v", source: Fixtures.openCVData + "/Megamind.avi")))
        #expect(frames.count == 270)
        let times = frames.map(\.timestampNanos)
        #expect(zip(times, times.dropFirst()).allSatisfy { $0 < $1 })
        let seconds = Double(times.last! - times.first!) / 1e9
        #expect(seconds > 10.5 && seconds < 11.6, "clip spans \(seconds) s")  // 270 frames at 23.98/s
    }

    @Test func fpsThinsAFileByMediaTime() throws {
        var camera = CameraConfiguration(id: "v", source: Fixtures.openCVData + "/Megamind.avi")
        camera.fps = 5  // the clip runs at about 23.98 frames/s for 11.3 s
        let frames = drain(try source(camera))
        #expect((52...60).contains(frames.count))
    }

    @Test func anImageDirectorySkipsUnreadableFiles() throws {
        let dir = Fixtures.temporaryDirectory("images")
        try FileManager.default.copyItem(atPath: Fixtures.faceImage("obama.jpg"), toPath: dir + "/a.jpg")
        try Data("not a jpeg".utf8).write(to: URL(fileURLWithPath: dir + "/b.jpg"))
        try FileManager.default.copyItem(atPath: Fixtures.faceImage("32bit.png"), toPath: dir + "/c.png")
        try Data("notes".utf8).write(to: URL(fileURLWithPath: dir + "/readme.txt"))
        let s = try source(CameraConfiguration(id: "d", source: dir))
        let frames = drain(s)
        #expect(frames.count == 2)
        #expect(s.unreadableImages == 1)
        #expect(frames.allSatisfy { $0.frame.channels == 3 })
    }

    @Test func aMissingFileIsAClearError() {
        let error = #expect(throws: VisionError.self) {
            try source(CameraConfiguration(id: "gone", source: "/nonexistent/clip.avi"))
        }
        #expect(error?.message.contains("no such file /nonexistent/clip.avi") == true)
    }
}
