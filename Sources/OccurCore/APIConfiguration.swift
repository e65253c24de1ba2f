import Foundation

/// occur.yaml `api:` — the HTTP control plane (README "HTTP API").
public struct APIConfiguration: Sendable, Equatable {
    /// Serve the API while `occur run` runs. Default true.
    public var enabled: Bool = true
    /// Host and port to listen on. Default 127.0.0.1:8970 (loopback only). Port 0 takes any free port.
    public var host: String = "127.0.0.1"
    public var port: Int = 8970
    /// Listen on a non-loopback address although the API speaks plain HTTP (bearer tokens in
    /// clear text on the network). Put a TLS proxy in front instead. Default false.
    public var allowInsecureRemote: Bool = false
    /// Largest request body (enrolment uploads), bytes. Default 20 MiB.
    public var maxUploadBytes: Int = 20 << 20
    /// Where the first run writes its admin token (mode 0600). Default `<data_dir>/admin.token`.
    public var adminTokenFile: String? = nil
    public init() {}

    public var isLoopback: Bool { ["127.0.0.1", "::1", "localhost"].contains(host) || host.hasPrefix("127.") }
}

extension APIConfiguration {
    init(_ node: ConfigNode, base: String) throws {
        self.init()
        let f = try node.fields()
        try f.read("enabled", into: &enabled) { try $0.bool() }
        if let addressNode = f.optional("address") {
            let address = try addressNode.string()
            guard let colon = address.lastIndex(of: ":"), let port = Int(address[address.index(after: colon)...]),
                  (0...65535).contains(port), colon != address.startIndex else {
                throw addressNode.error("'\(address)' is not host:port (e.g. 127.0.0.1:8970)")
            }
            host = String(address[..<colon]).trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
            self.port = port
        }
        try f.read("allow_insecure_remote", into: &allowInsecureRemote) { try $0.bool() }
        try f.read("max_upload_bytes", into: &maxUploadBytes) { try $0.int(atLeast: 1024) }
        try f.read("admin_token_file", into: &adminTokenFile) { resolvePath(try $0.string(), relativeTo: base) }
        if enabled, !isLoopback, !allowInsecureRemote, let addressNode = f.optional("address") {
            throw addressNode.error("the API speaks plain HTTP: listening on \(host) would send tokens and faces over the network in clear; "
                                    + "keep it on 127.0.0.1 behind a TLS proxy, or set api.allow_insecure_remote: true")
        }
        try f.finish()
    }
}
