// The planner, table-driven over capability rows made by hand: which model is chosen, with which
// adaptation steps, and the status and message when nothing can serve; model families (ABI 1.3)
// for ids beyond the rows, and the config's aliases.
import Foundation
@testable import PrismProviders
import XCTest

final class PlannerTests: XCTestCase {
    private static func limits(images: Int? = nil, pdfPages: Int? = nil) -> ModelLimits {
        var l = ModelLimits()
        l.maxImages = images
        l.maxPDFPages = pdfPages
        return l
    }

    // The rows: a full multi-modal model, a vision-only one, a text-only one, helpers.
    private let full = ModelCapability(provider: "big", id: "omni", inputs: [.text, .image, .pdf, .audio, .video], limits: limits(images: 20, pdfPages: 100))
    private let vision = ModelCapability(provider: "eye", id: "vision", inputs: [.text, .image], limits: limits(images: 4))
    private let text = ModelCapability(provider: "plain", id: "text", inputs: [.text])
    private let transcriber = ModelCapability(provider: "local", id: "whisper", operations: [.transcribe], inputs: [.audio])
    private let ocr = ModelCapability(provider: "local", id: "tesseract", operations: [.ocr], inputs: [.image])

    private let image = InputMedium(modality: .image, bytes: 1000, mimeType: "image/png")
    private func pdf(_ pages: Int) -> InputMedium { InputMedium(modality: .pdf, bytes: 5000, mimeType: "application/pdf", pages: pages) }
    private let audio = InputMedium(modality: .audio, bytes: 32000, mimeType: "audio/wav", seconds: 1)
    private let video = InputMedium(modality: .video, bytes: 90000, mimeType: "video/mp4", seconds: 10, hasAudio: true)

    private struct Row {
        var name: String
        var media: [InputMedium]
        var matrix: [ModelCapability]
        var route = RouteRequest()
        /// Expected first candidate and its steps, or nil when planning must fail.
        var model: String?
        var steps: [AdaptationStep] = []
        var error: ProviderFailure.Code?
        var message: String?
    }

    func testTable() throws {
        let rows: [Row] = [
            Row(name: "native first in matrix order", media: [pdf(3)], matrix: [text, vision, full], model: "big/omni"),
            Row(name: "PDF to a provider without PDF", media: [pdf(3)], matrix: [vision], model: "eye/vision",
                steps: [.fitImages, .pdfToPages(medium: 0, pages: 3)]),
            Row(name: "PDF to a text-only provider: text layer", media: [pdf(3)], matrix: [text], model: "plain/text", steps: [.pdfToText(medium: 0)]),
            Row(name: "PDF pages over max_images", media: [pdf(5)], matrix: [vision], error: .resourceExhausted,
                message: "the request has 5 images (PDF pages and video frames included), over its max_images of 4"),
            Row(name: "video to a provider without video", media: [video], matrix: [vision, transcriber], model: "eye/vision",
                steps: [.fitImages, .videoToFrames(medium: 0, frames: 4, transcriber: "local/whisper")]),
            Row(name: "audio to a provider without audio", media: [audio], matrix: [vision, transcriber], model: "eye/vision",
                steps: [.audioToTranscript(medium: 0, via: "local/whisper")]),
            Row(name: "audio and no transcriber", media: [audio], matrix: [vision, text], error: .failedPrecondition,
                message: "needs audio input; no provider accepts audio and no transcriber is loaded"),
            Row(name: "image to a text-only model via OCR", media: [image], matrix: [text, ocr], model: "plain/text",
                steps: [.imageToText(medium: 0, via: "local/tesseract")]),
            Row(name: "too many images", media: Array(repeating: image, count: 5), matrix: [vision], error: .resourceExhausted,
                message: "over its max_images of 4"),
            Row(name: "nothing capable at all", media: [], matrix: [transcriber], error: .failedPrecondition, message: "no loaded provider can generate"),
            Row(name: "no plugins", media: [], matrix: [], error: .failedPrecondition, message: "no provider plugin is loaded"),
            Row(name: "native only refuses adaptation", media: [pdf(2)], matrix: [vision], route: RouteRequest(nativeOnly: true),
                error: .failedPrecondition, message: "eye/vision: it has no PDF input (adaptation is off)"),
            Row(name: "explicit model that cannot serve names why", media: [audio], matrix: [full, vision], route: RouteRequest(model: "eye/vision"),
                error: .failedPrecondition, message: "eye/vision cannot serve this request: it has no audio input and no transcribe-capable provider is loaded"),
            Row(name: "explicit model not loaded", media: [], matrix: [full], route: RouteRequest(model: "nope/x"),
                error: .failedPrecondition, message: "model 'nope/x' is not loaded (loaded providers: big)"),
            Row(name: "explicit model wins over native", media: [pdf(1)], matrix: [full, vision], route: RouteRequest(model: "eye/vision"),
                model: "eye/vision", steps: [.fitImages, .pdfToPages(medium: 0, pages: 1)]),
            Row(name: "provider filter", media: [image], matrix: [full, vision], route: RouteRequest(provider: "eye"), model: "eye/vision", steps: [.fitImages]),
        ]
        for row in rows {
            let needs = RequestNeeds(media: row.media)
            do {
                let plan = try Planner().plan(needs, route: row.route, matrix: row.matrix)
                XCTAssertNil(row.error, "\(row.name): expected \(row.error!) but planned \(plan)")
                XCTAssertEqual(plan.first?.model.name, row.model, row.name)
                XCTAssertEqual(plan.first?.steps, row.steps, row.name)
            } catch let failure as ProviderFailure {
                XCTAssertEqual(failure.code, row.error, "\(row.name): \(failure)")
                if let message = row.message { XCTAssertTrue(failure.message.contains(message), "\(row.name): \(failure.message)") }
            }
        }
    }

    func testNativeCandidatesComeBeforeAdaptedAndPreferenceOrders() throws {
        let needs = RequestNeeds(media: [pdf(2)])
        let plan = try Planner().plan(needs, route: RouteRequest(), matrix: [vision, full])
        XCTAssertEqual(plan.map(\.model.name), ["big/omni", "eye/vision"])
        XCTAssertTrue(plan[0].isNative)
        XCTAssertFalse(plan[1].isNative)

        let preferred = try Planner(preference: ["eye"]).plan(RequestNeeds(media: [image]), route: RouteRequest(), matrix: [full, vision])
        XCTAssertEqual(preferred.map(\.model.name), ["eye/vision", "big/omni"])
    }

    func testLocalEnginesServeSpeechAndOCRUnlessAVendorIsPreferred() throws {
        let vendorTranscriber = ModelCapability(provider: "openai", id: "whisper-1", operations: [.transcribe], inputs: [.audio])
        let transcribe = RequestNeeds(operation: .transcribe, media: [audio])
        let plan = try Planner().plan(transcribe, route: RouteRequest(), matrix: [vendorTranscriber, transcriber])
        XCTAssertEqual(plan.map(\.model.name), ["local/whisper", "openai/whisper-1"])
        let preferred = try Planner(preference: ["openai"]).plan(transcribe, route: RouteRequest(), matrix: [vendorTranscriber, transcriber])
        XCTAssertEqual(preferred.map(\.model.name), ["openai/whisper-1", "local/whisper"])
        // The adaptation helper follows the same rule: audio to a text model goes through the local engine.
        let adapted = try Planner().plan(RequestNeeds(media: [audio]), route: RouteRequest(), matrix: [text, vendorTranscriber, transcriber])
        XCTAssertEqual(adapted.first?.steps, [.audioToTranscript(medium: 0, via: "local/whisper")])
    }

    func testFallbacksFollowTheExplicitModelAndCoolingModelsGoLast() throws {
        let plan = try Planner().plan(RequestNeeds(), route: RouteRequest(model: "eye/vision", fallbacks: ["plain/text", "nope/x"]), matrix: [full, vision, text])
        XCTAssertEqual(plan.map(\.model.name), ["eye/vision", "plain/text"])
        let cooled = try Planner().plan(RequestNeeds(), route: RouteRequest(), matrix: [full, text], skipping: ["big/omni"])
        XCTAssertEqual(cooled.map(\.model.name), ["plain/text", "big/omni"])
    }

    func testImageOutputGoesToImageGeneratorsCalledWithImageGenerate() throws {
        let painter = ModelCapability(provider: "paint", id: "painter", operations: [.imageGenerate], outputs: [.image])
        let multi = ModelCapability(provider: "multi", id: "both", inputs: [.text, .image], outputs: [.text, .image])
        let wantsImage = RequestNeeds(outputs: [.image])
        let plan = try Planner().plan(wantsImage, route: RouteRequest(), matrix: [text, painter, multi])
        XCTAssertEqual(plan.map(\.model.name), ["paint/painter", "multi/both"])
        XCTAssertEqual(plan.map(\.operation), [.imageGenerate, .generate])

        // Text is still asked of text models; an image generator named for it says what to ask instead.
        XCTAssertEqual(try Planner().plan(RequestNeeds(), route: RouteRequest(), matrix: [painter, text]).map(\.model.name), ["plain/text"])
        XCTAssertThrowsError(try Planner().plan(RequestNeeds(), route: RouteRequest(model: "paint/painter"), matrix: [painter])) { error in
            XCTAssertTrue((error as? ProviderFailure)?.message.contains("ask for image output") ?? false, "\(error)")
        }
        XCTAssertThrowsError(try Planner().plan(wantsImage, route: RouteRequest(), matrix: [text, vision])) { error in
            let failure = error as? ProviderFailure
            XCTAssertEqual(failure?.code, .failedPrecondition)
            XCTAssertEqual(failure?.message, "needs image output; no loaded provider generates images")
        }
    }

    // MARK: - Families (ABI 1.3) and aliases

    private func family(_ provider: String, _ pattern: String, inputs: Set<Modality>, limits: ModelLimits = ModelLimits()) -> ModelFamily {
        ModelFamily(pattern: pattern, template: ModelCapability(provider: provider, id: pattern, inputs: inputs, limits: limits))
    }

    func testFamilyPatternsMatchWholeIds() {
        let claude = family("anthropic", "claude-*", inputs: [.text])
        XCTAssertTrue(claude.matches("claude-sonnet-4-20250514"))
        XCTAssertTrue(claude.matches("claude-"))
        XCTAssertFalse(claude.matches("xclaude-sonnet"))
        XCTAssertFalse(claude.matches("gpt-4o"))
        let middle = family("gemini", "gemini-*-tts", inputs: [.text])
        XCTAssertTrue(middle.matches("gemini-2.5-flash-preview-tts"))
        XCTAssertFalse(middle.matches("gemini-2.5-flash-preview-tts-2"))
        XCTAssertTrue(middle.matches("gemini--tts"))
        let twoStars = family("openai", "*transcribe*", inputs: [.audio])
        XCTAssertTrue(twoStars.matches("gpt-4o-mini-transcribe"))
        XCTAssertTrue(twoStars.matches("transcribe"))
        XCTAssertFalse(twoStars.matches("gpt-4o"))
        XCTAssertTrue(family("x", "*", inputs: []).matches("anything/at:all"))
        // The id is the client's: no spaces, controls or non-ASCII, and bounded in length.
        XCTAssertFalse(claude.matches("claude-x y"))
        XCTAssertFalse(claude.matches("claude-\n"))
        XCTAssertFalse(claude.matches("claude-é"))
        XCTAssertFalse(claude.matches("claude-" + String(repeating: "a", count: ProviderLimits.maxModelIDLength)))
    }

    func testAnUnlistedIdIsServedByTheFirstMatchingFamilyUnderItsOwnName() throws {
        var limits = ModelLimits()
        limits.maxImagePixels = 1_150_000
        let known = ModelCapability(provider: "anthropic", id: "claude-sonnet-4-5", inputs: [.text, .image, .pdf], limits: limits)
        let families = [family("anthropic", "claude-*", inputs: [.text, .image, .pdf], limits: limits),
                        family("openai", "gpt-4o*", inputs: [.text, .image]), family("openai", "gpt-*", inputs: [.text])]
        let matrix = [known, vision]

        // The article's id: no known row, the claude-* family serves it, and the candidate carries
        // the id as asked (the plugin is called with it) and the family's limits.
        let plan = try Planner().plan(RequestNeeds(media: [pdf(2), image]), route: RouteRequest(model: "anthropic/claude-sonnet-4-20250514"),
                                      matrix: matrix, families: families)
        XCTAssertEqual(plan.map(\.model.name), ["anthropic/claude-sonnet-4-20250514"])
        XCTAssertEqual(plan[0].model.id, "claude-sonnet-4-20250514")
        XCTAssertEqual(plan[0].model.limits.maxImagePixels, 1_150_000)
        XCTAssertEqual(plan[0].steps, [.fitImages], "a PDF goes natively to a family that takes PDFs")

        // A known row wins over a family; the first matching family wins over a later one.
        XCTAssertEqual(try Planner().plan(RequestNeeds(), route: RouteRequest(model: "anthropic/claude-sonnet-4-5"), matrix: matrix, families: families)[0].model,
                       known)
        let vision4o = try Planner().plan(RequestNeeds(media: [image]), route: RouteRequest(model: "openai/gpt-4o-2024-11-20"), matrix: matrix, families: families)
        XCTAssertEqual(vision4o[0].model.inputs, [.text, .image])
        // gpt-3.5-turbo falls to the text-only family: its image is OCR'd... or refused without an OCR engine.
        XCTAssertThrowsError(try Planner().plan(RequestNeeds(media: [image]), route: RouteRequest(model: "openai/gpt-3.5-turbo"), matrix: matrix, families: families)) { error in
            XCTAssertEqual((error as? ProviderFailure)?.code, .failedPrecondition)
            XCTAssertTrue((error as? ProviderFailure)?.message.contains("openai/gpt-3.5-turbo cannot serve this request: it has no image input") ?? false, "\(error)")
        }
        // Fallbacks resolve through families too.
        let fallback = try Planner().plan(RequestNeeds(), route: RouteRequest(model: "eye/vision", fallbacks: ["anthropic/claude-opus-5"]),
                                          matrix: matrix, families: families)
        XCTAssertEqual(fallback.map(\.model.name), ["eye/vision", "anthropic/claude-opus-5"])
        // Without a model named, families add nothing: the matrix is what "any capable" picks from.
        XCTAssertEqual(try Planner().plan(RequestNeeds(), route: RouteRequest(), matrix: matrix, families: families).map(\.model.name),
                       ["anthropic/claude-sonnet-4-5", "eye/vision"])
    }

    func testAnIdNoFamilyMatchesNamesWhatTheProviderServes() {
        let matrix = [ModelCapability(provider: "anthropic", id: "claude-sonnet-4-5", inputs: [.text, .image])]
        let families = [family("anthropic", "claude-*", inputs: [.text, .image])]
        XCTAssertThrowsError(try Planner().plan(RequestNeeds(), route: RouteRequest(model: "anthropic/gpt-4o"), matrix: matrix, families: families)) { error in
            let failure = error as? ProviderFailure
            XCTAssertEqual(failure?.code, .failedPrecondition)
            XCTAssertEqual(failure?.message, "model 'anthropic/gpt-4o' is not served: anthropic serves claude-sonnet-4-5, and ids matching claude-*")
        }
        XCTAssertThrowsError(try Planner().plan(RequestNeeds(), route: RouteRequest(model: "mistral/large"), matrix: matrix, families: families)) { error in
            XCTAssertEqual((error as? ProviderFailure)?.message, "model 'mistral/large' is not loaded (loaded providers: anthropic)")
        }
    }

    func testAliasesResolveInTheModelAndTheFallbacks() throws {
        let planner = Planner(aliases: ["smart": "eye/vision", "cheap": "plain/text"])
        let plan = try planner.plan(RequestNeeds(), route: RouteRequest(model: "smart", fallbacks: ["cheap", "big/omni"]), matrix: [full, vision, text])
        XCTAssertEqual(plan.map(\.model.name), ["eye/vision", "plain/text", "big/omni"])
        XCTAssertThrowsError(try planner.plan(RequestNeeds(), route: RouteRequest(model: "dumb"), matrix: [full])) { error in
            XCTAssertTrue((error as? ProviderFailure)?.message.contains("a model is named provider/model, or by an alias of the config") ?? false, "\(error)")
        }
    }
}
