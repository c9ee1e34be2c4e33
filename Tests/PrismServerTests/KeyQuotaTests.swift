// API keys and quotas without a server: the key ring's checks of auth.keys, matching a presented
// key to its name, model allow-list globs, and the quota windows (requests per minute, tokens per
// minute, dollars per UTC day) on in-process counters and on Redis shared by two gates.
import Foundation
import Logging
import XCTest
import PrismProviders
import PrismStore
@testable import PrismRPC
@testable import PrismServer

final class KeyQuotaTests: XCTestCase {
    private func entry(_ name: String, key: String, rpm: Int? = nil, tpm: Int? = nil, usd: Double? = nil, models: [String]? = nil) -> APIKeyConfig {
        var entry = APIKeyConfig(name: name, key: key)
        entry.requests_per_minute = rpm
        entry.tokens_per_minute = tpm
        entry.usd_per_day = usd
        entry.models = models
        return entry
    }

    private func head(_ authorization: String?) -> CallHead {
        var metadata = Metadata()
        if let authorization { metadata.add("authorization", authorization) }
        return CallHead(path: "/prism.v1.Prism/Generate", service: "prism.v1.Prism", method: "Generate", metadata: metadata, peer: "test", deadline: nil)
    }

    func testPresentedKeyIsMatchedToItsName() throws {
        var hashed = APIKeyConfig(name: "bob", key_sha256: APIKeyDigest.digest("bob-key").map { String(format: "%02X", $0) }.joined())
        hashed.tokens_per_minute = 10
        let ring = try KeyRing(named: [entry("alice", key: "alice-key", rpm: 5), hashed], unnamed: ["plain-key"])
        let auth = APIKeyAuthInterceptor(digests: ring.keys.map(\.digest))
        XCTAssertEqual(try auth.authenticate(head("Bearer alice-key")), "alice")
        XCTAssertEqual(try auth.authenticate(head("bearer bob-key")), "bob")
        XCTAssertEqual(try auth.authenticate(head("Bearer plain-key")), "")
        for bad in ["Bearer alice-ke", "Bearer alice-key ", "Basic alice-key", nil] {
            XCTAssertThrowsError(try auth.authenticate(head(bad))) { XCTAssertEqual(($0 as? RPCError)?.code, .unauthenticated) }
        }
        XCTAssertEqual(ring.named("alice")?.limits, KeyLimits(requestsPerMinute: 5))
        XCTAssertEqual(ring.named("bob")?.limits, KeyLimits(tokensPerMinute: 10))
        XCTAssertNil(ring.named(""), "unnamed keys have no limits to look up")
    }

    func testKeysAndRedisFromTheConfigFileAndEnvironment() throws {
        let path = NSTemporaryDirectory() + "prism-keys-\(UUID().uuidString).json"
        try #"""
            {"auth": {"keys": [{"name": "web", "key": "k1", "requests_per_minute": 60, "usd_per_day": 2.5, "models": ["openai/*"]}]},
             "store": {"redis_url": "redis://127.0.0.1:6390", "quota_fail_open": true}, "cache": {"max_entry_bytes": 4096}}
            """#.write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        var settings = ServerSettings()
        XCTAssertFalse(try settings.authEnabled(), "loopback without named keys: auth off")
        try settings.apply(try ConfigFile.load(path))
        XCTAssertEqual(settings.redisURL, "redis://127.0.0.1:6390")
        XCTAssertTrue(settings.quotaFailOpen)
        XCTAssertEqual(settings.cacheMaxEntryBytes, 4096)
        XCTAssertTrue(try settings.authEnabled(), "named keys turn auth on, even on loopback")
        let ring = try KeyRing(named: settings.namedKeys, unnamed: settings.apiKeys)
        XCTAssertEqual(ring.named("web")?.limits, KeyLimits(requestsPerMinute: 60, usdMicrosPerDay: 2_500_000))
        XCTAssertEqual(ring.named("web")?.models, ModelAllowList(["openai/*"]))
        try settings.applyEnvironment(["PRISM_REDIS_URL": "redis://other:6379/1"])
        XCTAssertEqual(settings.redisURL, "redis://other:6379/1")
    }

    func testBadKeyEntriesAreRefusedByName() {
        func refusal(_ named: [APIKeyConfig], unnamed: [String] = []) -> String {
            do {
                _ = try KeyRing(named: named, unnamed: unnamed)
                return "accepted"
            } catch {
                return "\(error)"
            }
        }
        XCTAssertTrue(refusal([entry("a", key: "k1"), entry("a", key: "k2")]).contains("'a' is used twice"))
        XCTAssertTrue(refusal([entry("a", key: "k1"), entry("b", key: "k1")]).contains("configured twice"))
        XCTAssertTrue(refusal([entry("a", key: "k1")], unnamed: ["k1"]).contains("configured twice"))
        XCTAssertTrue(refusal([entry("has space", key: "k")]).contains("auth.keys[0].name"))
        XCTAssertTrue(refusal([APIKeyConfig(name: "a")]).contains("needs key_sha256"))
        XCTAssertTrue(refusal([APIKeyConfig(name: "a", key: "k", key_sha256: String(repeating: "0", count: 64))]).contains("both"))
        XCTAssertTrue(refusal([APIKeyConfig(name: "a", key_sha256: "abc")]).contains("key_sha256 must be 64 hex digits"))
        XCTAssertTrue(refusal([entry("a", key: "k", rpm: 0)]).contains("auth.keys[a].requests_per_minute"))
        XCTAssertTrue(refusal([entry("a", key: "k", usd: -1)]).contains("usd_per_day"))
        XCTAssertTrue(refusal([entry("a", key: "k", models: ["openai/*", ""])]).contains("models[1] is empty"))
    }

    func testModelGlobs() {
        let list = ModelAllowList(["openai/*", "anthropic/claude-*", "local/tesseract", "gemini/gemini-?.5-flash"])
        for allowed in ["openai/gpt-4o", "openai/", "openai/ft:gpt-4o:org/x", "anthropic/claude-sonnet-4-5", "local/tesseract", "gemini/gemini-2.5-flash"] {
            XCTAssertTrue(list.permits(allowed), allowed)
        }
        for denied in ["openai", "anthropic/claude", "anthropic/haiku", "local/tesseract-2", "xopenai/gpt-4o", "gemini/gemini-2.5-pro", "gemini/gemini-25-flash"] {
            XCTAssertFalse(list.permits(denied), denied)
        }
        XCTAssertTrue(ModelAllowList([]).permits("anything/at-all"))
        XCTAssertTrue(ModelAllowList(["*"]).permits("a/b"))
        XCTAssertTrue(ModelAllowList(["*/gpt-*-mini"]).permits("openai/gpt-4o-mini"))
        XCTAssertFalse(ModelAllowList(["*/gpt-*-mini"]).permits("openai/gpt-4o-mini-2"))
    }

    private func key(_ limits: KeyLimits, name: String = "k") -> APIKey {
        APIKey(digest: APIKeyDigest(name: name, key: name), limits: limits, models: ModelAllowList([]))
    }

    private func refusal(_ gate: QuotaGate, _ key: APIKey, at now: Date) async -> QuotaRefusal? {
        do {
            try await gate.admit(key, now: now)
            return nil
        } catch {
            return error as? QuotaRefusal
        }
    }

    /// A moment 10 s into a minute and 10 s into a UTC day.
    private let start = Date(timeIntervalSince1970: 1_800_000_000 - 1_800_000_000.truncatingRemainder(dividingBy: 86_400) + 10)

    private func checkRequestsPerMinute(_ gates: [QuotaGate]) async throws {
        let key = key(KeyLimits(requestsPerMinute: 3), name: "rpm-\(UUID().uuidString.prefix(8))")
        for i in 0..<3 {
            let refused = await refusal(gates[i % gates.count], key, at: start.addingTimeInterval(Double(i)))
            XCTAssertNil(refused, "call \(i + 1) of 3")
        }
        let refused = await refusal(gates.last!, key, at: start.addingTimeInterval(5))
        XCTAssertEqual(refused?.retryAfterMilliseconds, 45_000)
        XCTAssertTrue(refused?.message.contains("requests_per_minute") ?? false, refused?.message ?? "admitted")
        let nextMinute = await refusal(gates[0], key, at: start.addingTimeInterval(50))
        XCTAssertNil(nextMinute, "the next minute is a new window")
    }

    func testRequestsPerMinuteInProcess() async throws {
        try await checkRequestsPerMinute([QuotaGate(counters: MemoryQuotaCounters(), failOpen: false, logger: Logger(label: "test"))])
    }

    func testRequestsPerMinuteAcrossTwoGatesSharingRedis() async throws {
        let redis = try TestRedis.start()
        defer { redis.remove() }
        let gates = try (0..<2).map { _ in
            QuotaGate(counters: RedisQuotaCounters(pool: RedisPool(url: try RedisURL(redis.url))), failOpen: false, logger: Logger(label: "test"))
        }
        try await checkRequestsPerMinute(gates)
    }

    func testBudgetsAreChargedFromUsage() async throws {
        let gate = QuotaGate(counters: MemoryQuotaCounters(), failOpen: false, logger: Logger(label: "test"))
        let key = key(KeyLimits(tokensPerMinute: 100, usdMicrosPerDay: 50_000))
        var usage = Usage()
        usage.inputTokens = 60
        usage.outputTokens = 39
        usage.costUSDMicros = 20_000
        await gate.charge(key, usage: usage, now: start)
        let under = await refusal(gate, key, at: start.addingTimeInterval(1))
        XCTAssertNil(under, "99 of 100 tokens")
        usage.inputTokens = 1
        usage.outputTokens = 0
        await gate.charge(key, usage: usage, now: start.addingTimeInterval(2))
        let tokens = await refusal(gate, key, at: start.addingTimeInterval(3))
        XCTAssertTrue(tokens?.message.contains("tokens_per_minute") ?? false, tokens?.message ?? "admitted")
        XCTAssertEqual(tokens?.retryAfterMilliseconds, 47_000)
        // A new minute: the tokens are fresh, but the day's dollars (40_000 of 50_000) remain.
        let nextMinute = await refusal(gate, key, at: start.addingTimeInterval(60))
        XCTAssertNil(nextMinute)
        usage.costUSDMicros = 10_000
        await gate.charge(key, usage: usage, now: start.addingTimeInterval(61))
        let dollars = await refusal(gate, key, at: start.addingTimeInterval(120))
        XCTAssertTrue(dollars?.message.contains("usd_per_day") ?? false, dollars?.message ?? "admitted")
        XCTAssertEqual(dollars?.retryAfterMilliseconds, 86_400_000 - 130_000)
        let tomorrow = await refusal(gate, key, at: start.addingTimeInterval(86_400))
        XCTAssertNil(tomorrow, "a new UTC day")
    }

    func testUnreachableCountersFailClosedOrOpen() async throws {
        // Nothing listens on port 1 of loopback.
        let pool = RedisPool(url: try RedisURL("redis://127.0.0.1:1"))
        let key = key(KeyLimits(requestsPerMinute: 1))
        let closed = QuotaGate(counters: RedisQuotaCounters(pool: pool), failOpen: false, logger: Logger(label: "test"))
        do {
            try await closed.admit(key)
            XCTFail("admitted without counters")
        } catch let error as RPCError {
            XCTAssertEqual(error.code, .unavailable)
            XCTAssertTrue(error.message.contains("127.0.0.1:1"), error.message)
        }
        let open = QuotaGate(counters: RedisQuotaCounters(pool: pool), failOpen: true, logger: Logger(label: "test"))
        try await open.admit(key)
        try await open.admit(key)
    }
}
