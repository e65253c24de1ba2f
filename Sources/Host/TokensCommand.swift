import ArgumentParser
import Foundation
import OccurCore

extension AccessTokens.Role: ExpressibleByArgument {}

extension Occur {
    struct Tokens: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "API bearer tokens: viewer (read), operator (enrol, name, enable/disable plugins), admin (tokens, deletion, audit).",
            subcommands: [Create.self, List.self, Revoke.self])

        struct Create: ParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Make a token and print it (the only time it is shown).")
            @OptionGroup var options: HostOptions
            @Option(help: "viewer, operator or admin.") var role: AccessTokens.Role
            @Option(help: "A label for the token (who or what uses it).") var name = "cli"

            func run() throws {
                let (_, store) = try options.openStore()
                let (token, secret) = try AccessTokens(store: store).create(role: role, name: name)
                try AuditLog(store: store).record(actor: "cli", action: "tokens.create", target: "token \(token.id)",
                                                  result: "ok", detail: "role \(role.rawValue)")
                FileHandle.standardError.write(Data("token \(token.id) (\(role.rawValue), \(name)); it is not stored and will not be shown again:\n".utf8))
                print(secret)
            }
        }

        struct List: ParsableCommand {
            static let configuration = CommandConfiguration(abstract: "List tokens (never their secrets).")
            @OptionGroup var options: HostOptions

            func run() throws {
                let (_, store) = try options.openStore()
                for token in try AccessTokens(store: store).list() {
                    let created = Date(timeIntervalSince1970: Double(token.createdMilliseconds) / 1000)
                    print("\(token.id)\t\(token.role.rawValue)\t\(token.revoked ? "revoked" : "live")\t\(ISO8601DateFormatter().string(from: created))\t\(token.name)")
                }
            }
        }

        struct Revoke: ParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Revoke a token by id: it stops working at once.")
            @OptionGroup var options: HostOptions
            @Argument(help: "The token's id (occur tokens list).") var id: Int64

            func run() throws {
                let (_, store) = try options.openStore()
                let revoked = try AccessTokens(store: store).revoke(id: id)
                try AuditLog(store: store).record(actor: "cli", action: "tokens.revoke", target: "token \(id)",
                                                  result: revoked ? "ok" : "not_found")
                guard revoked else { throw CleanExit.message("error: no live token \(id)", code: 1) }
                print("token \(id): revoked")
            }
        }
    }

    struct Audit: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the audit log: who (token) did what (action) to which target, with what result.")
        @OptionGroup var options: HostOptions
        @Option(help: "Only entries since this time: ISO 8601, or an age such as 10m, 2h, 7d.") var since: String?
        @Option(help: "The newest N entries.") var limit = 100
        @Flag(help: "One JSON object per line.") var json = false

        func run() throws {
            let (_, store) = try options.openStore()
            var from: Date?
            if let since {
                guard let date = parseSince(since) else { throw CleanExit.message("error: --since: expected ISO 8601 or an age like 2h", code: 2) }
                from = date
            }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            for entry in try AuditLog(store: store).entries(since: from, limit: limit) {
                if json {
                    print(String(decoding: try encoder.encode(entry), as: UTF8.self))
                } else {
                    let time = ISO8601DateFormatter.withFractions.string(from: entry.time)
                    print([time, entry.actor, entry.action, entry.target ?? "-", entry.result, entry.detail ?? ""].joined(separator: "  "))
                }
            }
        }
    }
}
