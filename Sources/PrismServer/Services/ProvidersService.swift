// prism.v1.Prism/ListProviders: the capability matrix as the plugin host has it now, every
// plugin file with its state (loaded, draining, failed and why), each known model's row and,
// apart, the model families (ABI 1.3) whose ids are patterns.
import NIOCore
import PrismProto
import PrismProviders
import PrismRPC

enum ProvidersService {
    static func handler(_ host: PluginHost) -> RPCHandler {
        .unary { body, _ in
            _ = try decodeRequest(prism__v1__list_providers_request__init, body)
            return response(host.plugins())
        }
    }

    static func response(_ plugins: [PluginHost.PluginStatus]) -> ByteBuffer {
        let b = ProtoBuilder()
        let providers = plugins.map { status -> UnsafeMutablePointer<Prism__V1__Provider> in
            let p = b.message(prism__v1__provider__init)
            p.pointee.name = b.string(status.provider?.name ?? "")
            p.pointee.version = b.string(status.provider?.version ?? "")
            p.pointee.plugin = b.string(status.fileName)
            switch status.state {
            case .loaded:
                p.pointee.state = PRISM__V1__PROVIDER_STATE__PROVIDER_STATE_LOADED
            case .draining(let reason):
                p.pointee.state = PRISM__V1__PROVIDER_STATE__PROVIDER_STATE_DRAINING
                p.pointee.state_reason = b.string(reason)
            case .failed(let reason):
                p.pointee.state = PRISM__V1__PROVIDER_STATE__PROVIDER_STATE_FAILED
                p.pointee.state_reason = b.string(reason)
            }
            let models = (status.provider?.models ?? []).map { model(b, $0) }
            p.pointee.n_models = models.count
            p.pointee.models = b.array(models)
            // Apart from the known rows: a family's id is its "provider/pattern".
            let families = (status.provider?.families ?? []).map { model(b, $0.template) }
            p.pointee.n_families = families.count
            p.pointee.families = b.array(families)
            return p
        }
        let response = b.message(prism__v1__list_providers_response__init)
        response.pointee.n_providers = providers.count
        response.pointee.providers = b.array(providers)
        return encodeResponse(b, response)
    }

    private static func model(_ b: ProtoBuilder, _ c: ModelCapability) -> UnsafeMutablePointer<Prism__V1__Model> {
        let m = b.message(prism__v1__model__init)
        m.pointee.id = b.string(c.name)
        let operations = c.operations.sorted().map { Prism__V1__Operation(rawValue: UInt32($0.rawValue)) }
        m.pointee.n_operations = operations.count
        m.pointee.operations = b.array(operations)
        let inputs = c.inputs.union([.text]).sorted().map { Prism__V1__Modality(rawValue: UInt32($0.rawValue)) }
        m.pointee.n_inputs = inputs.count
        m.pointee.inputs = b.array(inputs)
        let outputs = c.outputs.sorted().map { Prism__V1__Modality(rawValue: UInt32($0.rawValue)) }
        m.pointee.n_outputs = outputs.count
        m.pointee.outputs = b.array(outputs)

        let l = b.message(prism__v1__limits__init)
        l.pointee.max_images = UInt32(c.limits.maxImages ?? 0)
        l.pointee.max_image_bytes = UInt64(c.limits.maxImageBytes ?? 0)
        l.pointee.max_image_long_edge = UInt32(c.limits.maxImageLongEdge ?? 0)
        l.pointee.max_image_pixels = UInt64(c.limits.maxImagePixels ?? 0)
        l.pointee.max_image_short_edge = UInt32(c.limits.maxImageShortEdge ?? 0)
        l.pointee.n_image_mime_types = c.limits.imageMimeTypes.count
        l.pointee.image_mime_types = b.strings(c.limits.imageMimeTypes)
        l.pointee.max_pdf_pages = UInt32(c.limits.maxPDFPages ?? 0)
        l.pointee.max_pdf_bytes = UInt64(c.limits.maxPDFBytes ?? 0)
        l.pointee.max_audio_seconds = UInt32(c.limits.maxAudioSeconds ?? 0)
        l.pointee.max_audio_bytes = UInt64(c.limits.maxAudioBytes ?? 0)
        l.pointee.n_audio_mime_types = c.limits.audioMimeTypes.count
        l.pointee.audio_mime_types = b.strings(c.limits.audioMimeTypes)
        l.pointee.max_request_bytes = UInt64(c.limits.maxRequestBytes ?? 0)
        m.pointee.limits = l

        let f = b.message(prism__v1__features__init)
        f.pointee.streaming = c.features.streaming ? 1 : 0
        f.pointee.tools = c.features.tools ? 1 : 0
        f.pointee.json_schema = c.features.jsonSchema ? 1 : 0
        f.pointee.batch = c.features.batch ? 1 : 0
        f.pointee.system_prompt = c.features.systemPrompt ? 1 : 0
        f.pointee.streaming_input = c.features.streamingInput ? 1 : 0
        m.pointee.features = f

        let p = b.message(prism__v1__pricing__init)
        p.pointee.input_usd_micros_per_million_tokens = c.pricing.inputPerMillion
        p.pointee.output_usd_micros_per_million_tokens = c.pricing.outputPerMillion
        m.pointee.pricing = p
        return m
    }
}
