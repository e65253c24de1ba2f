import Foundation
import Testing
import OccurTestSupport
@testable import OccurCore

/// The LBPH backend. It needs faces taken alike (the classic, controlled-enrolment case):
/// dlib's johns set — 5 people x 11 aligned 150x150 crops shipped with libdlib19.1.
@Suite struct LBPHTests {
    static let johns = "/usr/share/doc/libdlib19.1/examples/johns"

    @Test func nearestNeighbourOnTheJohnsSet() throws {
        let embedder = LBPHEmbedder()
        var samples: [(person: String, histogram: [Float])] = []
        for person in try FileManager.default.contentsOfDirectory(atPath: Self.johns).sorted() {
            let folder = Self.johns + "/" + person
            for file in try FileManager.default.contentsOfDirectory(atPath: folder).sorted() {
                let frame = try Frame.read(contentsOf: folder + "/" + file)
                let whole = Face(box: Box(x: 0, y: 0, width: Double(frame.width), height: Double(frame.height)))
                samples.append((person, try #require(embedder.embed(whole, in: frame))))
            }
        }
        #expect(samples.count == 55)
        var correct = 0
        for (i, sample) in samples.enumerated() {
            let nearest = samples.indices.filter { $0 != i }.min {
                distance(sample.histogram, samples[$0].histogram, metric: .chiSquare)
                    < distance(sample.histogram, samples[$1].histogram, metric: .chiSquare)
            }!
            if samples[nearest].person == sample.person { correct += 1 }
        }
        var same: [Double] = [], other: [Double] = []
        for i in samples.indices {
            for j in samples.indices where j > i {
                let d = distance(samples[i].histogram, samples[j].histogram, metric: .chiSquare)
                if samples[i].person == samples[j].person { same.append(d) } else { other.append(d) }
            }
        }
        same.sort(); other.sort()
        print("LBPH johns nearest-neighbour: \(correct)/55; same-person median \(same[same.count / 2]) p90 \(same[same.count * 9 / 10]); other-person p10 \(other[other.count / 10]) median \(other[other.count / 2]) min \(other[0])")
        #expect(correct >= 50)  // measured: 52 of 55
    }

    @Test func lbphIsABackendChosenInOccurYaml() throws {
        let host = try HostConfiguration(ConfigNode.parse("recognition: { backend: lbph }", file: "occur.yaml"))
        let gallery = try FaceGallery(store: EventStore(path: Fixtures.temporaryDirectory("lbph") + "/occur.db"))
        let faces = try StillImageFaces(configuration: host, gallery: gallery, logger: Fixtures.logger)
        #expect(faces.recognizer.embedder.model == "lbph-r1-n8-g8")
        #expect(try faces.enroll(name: "obama", images: [Fixtures.faceImage("obama.jpg")]).allSatisfy(\.enrolled))
        #expect(try faces.recognize(imageAt: Fixtures.faceImage("obama.jpg")).first?.recognition?.identity == "obama")
        let biden = try #require(try faces.recognize(imageAt: Fixtures.faceImage("biden.jpg")).first?.recognition)
        #expect(biden.identity == nil && biden.distance > faces.recognizer.threshold)
    }
}
