import ArgumentParser
import Foundation
import OccurCore

extension Occur {
    struct Keys: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The data key that seals face crops, snapshots and embeddings (README \"Encryption at rest\").",
            subcommands: [Status.self, Rotate.self])

        struct Status: ParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Where the data key is, and how much data it seals.")
            @OptionGroup var options: HostOptions

            func run() throws {
                let (_, store) = try options.openStore()
                let protection = store.protection
                print("key: \(protection.source)")
                print("sealing new data: \(protection.sealsNewData ? "yes, with key \(protection.currentKeyID.map { String($0, radix: 16) } ?? "-")" : "no (storage.encryption: false)")")
                let census = try ProtectionCensus.take(store: store)
                print("embeddings: \(census.sealedEmbeddings) sealed, \(census.plainEmbeddings) plain")
                print("images: \(census.sealedImages) sealed, \(census.plainImages) plain")
                if census.plainEmbeddings + census.plainImages > 0 && protection.sealsNewData {
                    print("`occur keys rotate` seals the plain ones")
                }
            }
        }

        struct Rotate: ParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Make a new data key and re-seal every embedding and image under it (stop `occur run` first).")
            @OptionGroup var options: HostOptions

            func run() throws {
                let (_, store) = try options.openStore()
                do {
                    let report = try KeyRotation.rotate(store: store) { print($0) }
                    print("new key \(String(report.newKeyID, radix: 16)) in \(store.protection.source); "
                          + "retired \(report.retiredKeyIDs.map { String($0, radix: 16) }.joined(separator: ", ")); "
                          + "\(report.embeddings) embeddings and \(report.images) images re-sealed")
                } catch {
                    throw CleanExit.message("error: \(error)", code: 1)
                }
            }
        }
    }
}
