import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif

/// dlib's imglab XML (`<dataset><images><image file='a.jpg'><box top left width height
/// ignore='1'/>…`), the ground truth of `occur eval detection` (dlib's examples/faces/testing.xml).
public struct ImglabDataset: Sendable, Equatable {
    public struct Image: Sendable, Equatable {
        /// Absolute path (the XML's `file` resolved against the XML's directory).
        public var path: String
        public var boxes: [Box]
        /// Boxes marked ignore='1': a detection there is neither a hit nor a false alarm.
        public var ignored: [Box]
    }

    public var file: String
    public var images: [Image]

    public static func load(contentsOf file: String) throws -> ImglabDataset {
        guard let data = FileManager.default.contents(atPath: file) else {
            throw EvaluationError("\(file): cannot read the ground-truth file")
        }
        let reader = Reader(base: (file as NSString).deletingLastPathComponent, file: file)
        let parser = XMLParser(data: data)
        parser.delegate = reader
        guard parser.parse(), reader.problem == nil else {
            let reason = reader.problem ?? parser.parserError.map { "\($0.localizedDescription)" } ?? "unreadable XML"
            throw EvaluationError("\(file):\(parser.lineNumber): \(reason)")
        }
        guard !reader.images.isEmpty else {
            throw EvaluationError("\(file): no <image> elements: not a dlib imglab dataset")
        }
        for image in reader.images where !FileManager.default.fileExists(atPath: image.path) {
            throw EvaluationError("\(file): image \(image.path) does not exist")
        }
        return ImglabDataset(file: file, images: reader.images)
    }

    private final class Reader: NSObject, XMLParserDelegate {
        let base: String
        let file: String
        var images: [Image] = []
        var problem: String?

        init(base: String, file: String) {
            self.base = base
            self.file = file
        }

        func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?,
                    attributes: [String: String] = [:]) {
            switch name {
            case "image":
                guard let path = attributes["file"], !path.isEmpty else {
                    fail(parser, "<image> without a file attribute")
                    return
                }
                images.append(Image(path: path.hasPrefix("/") ? path : base + "/" + path, boxes: [], ignored: []))
            case "box":
                guard !images.isEmpty else {
                    fail(parser, "<box> outside an <image>")
                    return
                }
                let numbers = ["left", "top", "width", "height"].map { attributes[$0].flatMap(Double.init) }
                guard let left = numbers[0], let top = numbers[1], let width = numbers[2], let height = numbers[3],
                      width > 0, height > 0 else {
                    fail(parser, "<box> needs numeric left, top, width and height above 0, got \(attributes)")
                    return
                }
                let box = Box(x: left, y: top, width: width, height: height)
                if attributes["ignore"] == "1" { images[images.count - 1].ignored.append(box) } else {
                    images[images.count - 1].boxes.append(box)
                }
            default: break
            }
        }

        private func fail(_ parser: XMLParser, _ message: String) {
            problem = message
            parser.abortParsing()
        }
    }
}

/// Detections matched to ground truth one to one, best overlap first, at `iou` or more.
public struct DetectionMatch: Sendable, Equatable {
    public var truths = 0
    public var detections = 0
    public var hits = 0
    /// Detections on an ignored box (counted neither way).
    public var ignoredDetections = 0

    public var falseAlarms: Int { detections - hits - ignoredDetections }
    public var recall: Double { truths > 0 ? Double(hits) / Double(truths) : 0 }
    public var precision: Double { hits + falseAlarms > 0 ? Double(hits) / Double(hits + falseAlarms) : 0 }

    public init() {}

    public mutating func add(detected: [Box], truth: [Box], ignored: [Box], iou threshold: Double = 0.5) {
        truths += truth.count
        detections += detected.count
        var pairs: [(iou: Double, d: Int, t: Int)] = []
        for (d, box) in detected.enumerated() {
            for (t, gt) in truth.enumerated() {
                let overlap = box.iou(gt)
                if overlap >= threshold { pairs.append((overlap, d, t)) }
            }
        }
        var usedD = Set<Int>(), usedT = Set<Int>()
        for pair in pairs.sorted(by: { $0.iou > $1.iou }) where !usedD.contains(pair.d) && !usedT.contains(pair.t) {
            usedD.insert(pair.d)
            usedT.insert(pair.t)
            hits += 1
        }
        for (d, box) in detected.enumerated() where !usedD.contains(d) {
            if ignored.contains(where: { box.iou($0) >= threshold }) { ignoredDetections += 1 }
        }
    }
}
