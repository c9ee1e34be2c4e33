// The openai plugin's rows of the capability matrix: chat models (text, images, PDFs as file
// parts, audio for the audio models), transcription, speech, image generation and embedding models, with
// the vendor's limits from shared/vendor-apis.md §2.
import Foundation
import PrismPluginKit

enum OpenAIModels {
    /// Transcriptions take files of at most 25 MiB (whisper-1).
    static let maxTranscriptionBytes: UInt64 = 26_214_400
    /// The formats /audio/transcriptions takes (flac, mp3, mp4, mpeg, mpga, m4a, ogg, wav, webm).
    static let transcriptionMimeTypes = ["audio/flac", "audio/mpeg", "audio/mp4", "audio/ogg", "audio/wav", "audio/webm"]
    /// The formats of an `input_audio` part.
    static let chatAudioMimeTypes = ["audio/wav", "audio/mpeg"]

    static func rows(_ settings: OpenAISettings) -> [ModelInfo] {
        settings.prices.priced(settings.models.map { chat($0, settings, audio: false) }
            + settings.audioModels.map { chat($0, settings, audio: true) }
            + settings.transcribeModels.map(transcriber)
            + settings.speechModels.map(voice)
            + settings.imageModels.map(imageGenerator)
            + settings.embedModels.map(ModelInfo.embedder))
    }

    /// The families (ABI 1.3), most specific first, after the config's (`families`): OpenAI's
    /// naming rules with a key, so a model newer than this plugin is routable; a keyless local
    /// server (vLLM, llama.cpp, Ollama) takes any model name, so there every id is a chat model.
    static func families(_ settings: OpenAISettings, config: [String: Any]) throws -> [ModelInfo] {
        let builtIn: [ModelInfo]
        if settings.apiKey == nil {
            builtIn = [chat("*", settings, audio: false)]
        } else {
            builtIn = ["*transcribe*", "whisper*"].map(transcriber) + ["*tts*"].map(voice)
                + ["gpt-image*", "dall-e*"].map(imageGenerator) + [chat("*audio*", settings, audio: true)]
                // Image input: GPT-4o, 4.1, 4.5 and 5 and the o-series reasoning models.
                + ["gpt-4o*", "gpt-4.1*", "gpt-4.5*", "gpt-5*", "o1*", "o3*", "o4*"].map { chat($0, settings, audio: false) }
                // Any other GPT (gpt-3.5-turbo, gpt-4): text only, the safe assumption.
                + [chat("gpt-*", settings, audio: false, vision: false)]
        }
        let known = rows(settings)
        return settings.prices.priced(try ModelFamilies.configured(config, plugin: "openai", models: known, builtIn: builtIn))
    }

    /// A chat model; audio models take `input_audio` but no images or PDFs. `vision` overrides
    /// the settings' for a family known to be text-only.
    static func chat(_ id: String, _ settings: OpenAISettings, audio: Bool, vision: Bool? = nil) -> ModelInfo {
        var m = ModelInfo(id: id)
        m.tools = true
        m.jsonSchema = true
        // The Batch API (half price, Batch.swift) serves chat completions for keyed accounts; a
        // keyless local server has no /batches.
        m.batch = settings.apiKey != nil
        m.maxRequestBytes = OpenAIDefaults.maxRequestBytes
        if audio {
            m.inputs = [.text, .audio]
            m.audioMimeTypes = chatAudioMimeTypes
            return m
        }
        m.inputs = [.text]
        if vision ?? settings.vision {
            m.inputs.append(.image)
            m.maxImages = OpenAIDefaults.maxImages
            m.maxImageBytes = OpenAIDefaults.maxImageBytes
            m.maxImageLongEdge = OpenAIDefaults.maxImageLongEdge
            m.maxImageShortEdge = OpenAIDefaults.maxImageShortEdge
            m.maxImagePixels = OpenAIDefaults.maxImagePixels
            m.imageMimeTypes = ["image/jpeg", "image/png", "image/webp", "image/gif"]
        }
        if settings.pdf && vision != false { m.inputs.append(.pdf) }
        return m
    }

    static func transcriber(_ id: String) -> ModelInfo {
        var m = ModelInfo(id: id)
        m.operations = [.transcribe]
        m.inputs = [.audio]
        m.outputs = [.text]
        m.maxAudioBytes = maxTranscriptionBytes
        m.audioMimeTypes = transcriptionMimeTypes
        m.streaming = false
        m.systemPrompt = false
        return m
    }

    static func voice(_ id: String) -> ModelInfo {
        var m = ModelInfo(id: id)
        m.operations = [.synthesize]
        m.inputs = [.text]
        m.outputs = [.audio]
        m.systemPrompt = false
        return m
    }

    static func imageGenerator(_ id: String) -> ModelInfo {
        var m = ModelInfo(id: id)
        m.operations = [.imageGenerate]
        m.inputs = [.text]
        m.outputs = [.image]
        m.streaming = false
        m.systemPrompt = false
        return m
    }
}
