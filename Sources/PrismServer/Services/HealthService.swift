// grpc.health.v1.Health: the serving status of the server ("") and of each service, for
// load balancers and orchestrators. Check answers on the event loop; Watch streams changes.
import NIOConcurrencyHelpers
import NIOCore
import PrismProto
import PrismRPC

/// The serving status of each service, with watchers notified on change.
public final class HealthStatusStore: Sendable {
    public typealias ServingStatus = Grpc__Health__V1__HealthCheckResponse__ServingStatus

    private struct State {
        var statuses: [String: ServingStatus] = [:]
        var watchers: [Int: (service: String, continuation: AsyncStream<ServingStatus>.Continuation)] = [:]
        var nextWatcher = 0
    }

    private let state = NIOLockedValueBox(State())

    public init() {}

    public func set(_ service: String, _ status: ServingStatus) {
        let toNotify = state.withLockedValue { state -> [AsyncStream<ServingStatus>.Continuation] in
            guard state.statuses[service] != status else { return [] }
            state.statuses[service] = status
            return state.watchers.values.filter { $0.service == service }.map(\.continuation)
        }
        for continuation in toNotify { continuation.yield(status) }
    }

    /// Marks every known service NOT_SERVING (at shutdown, so balancers move away first).
    public func setAllNotServing() {
        let services = state.withLockedValue { Array($0.statuses.keys) }
        for service in services { set(service, GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING) }
    }

    public func status(of service: String) -> ServingStatus? {
        state.withLockedValue { $0.statuses[service] }
    }

    /// The current status (SERVICE_UNKNOWN if none), then every change, until cancelled.
    func watch(_ service: String) -> AsyncStream<ServingStatus> {
        let (stream, continuation) = AsyncStream.makeStream(of: ServingStatus.self, bufferingPolicy: .bufferingNewest(1))
        let id = state.withLockedValue { state -> Int in
            let id = state.nextWatcher
            state.nextWatcher += 1
            state.watchers[id] = (service, continuation)
            continuation.yield(state.statuses[service] ?? GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVICE_UNKNOWN)
            return id
        }
        continuation.onTermination = { [weak self] _ in
            _ = self?.state.withLockedValue { $0.watchers.removeValue(forKey: id) }
        }
        return stream
    }
}

enum HealthService {
    static func definition(store: HealthStatusStore) -> ServiceDefinition {
        var service = ServiceDefinition(name: "grpc.health.v1.Health")
        // Probes call Check often: an empty request (service "") skips decoding, and the
        // four possible answers are encoded once.
        let answers = Dictionary(uniqueKeysWithValues: allStatuses.map { ($0.rawValue, response($0)) })
        service.add("Check", .unaryOnEventLoop { body, _ in
            var name = ""
            if body.readableBytes > 0 {
                let request = try decodeRequest(grpc__health__v1__health_check_request__init, body)
                name = String(protoC: request.pointee.service)
            }
            guard let status = store.status(of: name) else {
                throw RPCError(.notFound, "unknown service '\(name)'")
            }
            return answers[status.rawValue]!
        })
        service.add("Watch", .serverStreaming { body, _, writer in
            let request = try decodeRequest(grpc__health__v1__health_check_request__init, body)
            let name = String(protoC: request.pointee.service)
            for await status in store.watch(name) {
                try await writer.write(response(status))
            }
        })
        return service
    }

    private static let allStatuses = [
        GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__UNKNOWN,
        GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING,
        GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING,
        GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVICE_UNKNOWN,
    ]

    private static func response(_ status: HealthStatusStore.ServingStatus) -> ByteBuffer {
        let builder = ProtoBuilder()
        let message = builder.message(grpc__health__v1__health_check_response__init)
        message.pointee.status = status
        return encodeResponse(builder, message)
    }
}
