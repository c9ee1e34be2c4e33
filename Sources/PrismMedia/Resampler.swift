// Turns decoded frames of any layout, sample format and rate into interleaved PCM of one format
// (swresample, with the SoX engine when FFmpeg was built with libsoxr, as Debian's is).
import CFFmpeg
import CPrismMedia
import Foundation

/// A swresample context created from the first frame it sees, and made again when a frame comes
/// in another layout, sample format or rate (an MP3 may change from stereo to mono mid-stream:
/// a context made for two planes would read a second plane the frame does not have).
final class Resampler {
    let output: PCMFormat
    private var context: OpaquePointer?
    /// What the context was made for: channels, channel order and mask, sample format, rate.
    private var madeFor: (channels: Int32, order: UInt32, mask: UInt64, format: Int32, rate: Int32)?
    private var buffer: [UInt8] = []
    private(set) var usedSoxr = false

    init(output: PCMFormat) { self.output = output }

    deinit {
        if context != nil { swr_free(&context) }
    }

    /// Converts one decoded frame; `sink` sees the converted bytes (valid only during the call).
    func convert(_ frame: UnsafeMutablePointer<AVFrame>, _ sink: (UnsafeRawBufferPointer) throws -> Void) throws {
        let layout = frame.pointee.ch_layout
        let parameters = (layout.nb_channels, layout.order.rawValue, layout.u.mask, frame.pointee.format, frame.pointee.sample_rate)
        if let madeFor, madeFor != parameters {
            try flush(sink)
            swr_free(&context)
        }
        if context == nil {
            madeFor = parameters
            var soxr: Int32 = 0
            context = prism_swr_create(&frame.pointee.ch_layout, frame.pointee.format, frame.pointee.sample_rate,
                                       Int32(output.channels), output.sample.av.rawValue, Int32(output.sampleRate), 1, &soxr)
            guard context != nil else { throw MediaError.libraryFailure("creating a resampler for \(output)") }
            usedSoxr = soxr != 0
        }
        let input = UnsafeMutableRawPointer(frame.pointee.extended_data).map {
            $0.assumingMemoryBound(to: UnsafePointer<UInt8>?.self)
        }
        try run(input: input, count: frame.pointee.nb_samples, sink)
    }

    /// Emits what the resampler still holds (its filter delay) at the end of the input.
    func flush(_ sink: (UnsafeRawBufferPointer) throws -> Void) throws {
        guard context != nil else { return }
        try run(input: nil, count: 0, sink)
    }

    private func run(input: UnsafeMutablePointer<UnsafePointer<UInt8>?>?, count: Int32,
                     _ sink: (UnsafeRawBufferPointer) throws -> Void) throws {
        let capacity = Int(swr_get_out_samples(context, count)) + 32
        guard capacity > 0 else { return }
        let needed = capacity * output.bytesPerFrame
        if buffer.count < needed { buffer = [UInt8](repeating: 0, count: needed) }
        let produced: Int32 = buffer.withUnsafeMutableBytes { raw in
            var planes: [UnsafeMutablePointer<UInt8>?] = [raw.bindMemory(to: UInt8.self).baseAddress]
            return swr_convert(context, &planes, Int32(capacity), input, count)
        }
        guard produced >= 0 else { throw MediaError.libraryFailure("resampling: \(avErrorText(produced))") }
        if produced > 0 {
            try buffer.withUnsafeBytes { try sink(UnsafeRawBufferPointer(rebasing: $0[0 ..< Int(produced) * output.bytesPerFrame])) }
        }
    }
}
