// FFmpeg inside PrismMedia: a demuxer over bytes in memory or over a pull callback, and the
// decoder for its best audio or video stream. Shared by the audio and video code.
import CFFmpeg
import CPrismMedia
import Foundation

/// FFmpeg's error code as text.
func avErrorText(_ code: Int32) -> String {
    var buffer = [CChar](repeating: 0, count: 256)
    av_strerror(code, &buffer, buffer.count)
    return String(cString: buffer)
}

/// A demuxer whose input never touches the file system or the network (the shim refuses every
/// `io_open` and only whitelisted demuxers run).
final class AVInput {
    let raw: OpaquePointer
    let context: UnsafeMutablePointer<AVFormatContext>

    /// Opens bytes in memory (copied). `formatName`/`options` as for `ffmpeg -f NAME -OPT VALUE`.
    init(bytes: Data, probeBytes: Int, formatName: String? = nil, options: String? = nil, kind: MediaFormat) throws {
        var error = [CChar](repeating: 0, count: 256)
        let opened: OpaquePointer? = bytes.withUnsafeBytes { buffer in
            prism_av_open_memory(buffer.bindMemory(to: UInt8.self).baseAddress, buffer.count, Int64(probeBytes),
                                 formatName, options, &error, error.count)
        }
        guard let opened, let context = prism_av_format(opened) else {
            throw MediaError.corrupt(kind, detail: String(cString: error))
        }
        raw = opened
        self.context = context
    }

    /// Opens a sequential stream read through `read` (see StreamingAudioDecoder).
    init(read: PrismAVReadFn, opaque: UnsafeMutableRawPointer, probeBytes: Int, formatName: String?, options: String?) throws {
        var error = [CChar](repeating: 0, count: 256)
        guard let opened = prism_av_open_stream(read, opaque, Int64(probeBytes), formatName, options, &error, error.count),
              let context = prism_av_format(opened) else {
            throw MediaError.corrupt(.unknown, detail: String(cString: error))
        }
        // Audio arriving live (Transcribe) is decoded as it comes: FFmpeg's default 5 s of
        // stream analysis would hold back the first seconds; half a second finds the parameters.
        context.pointee.max_analyze_duration = Int64(AV_TIME_BASE) / 2
        raw = opened
        self.context = context
    }

    deinit { prism_av_close(raw) }

    /// Reads stream parameters (may read and buffer the first packets).
    func findStreamInfo(kind: MediaFormat) throws {
        let rc = avformat_find_stream_info(context, nil)
        guard rc >= 0 else { throw MediaError.corrupt(kind, detail: "reading stream info: \(avErrorText(rc))") }
    }

    /// Demuxer short name ("wav", "mov,mp4,m4a,3gp,3g2,mj2", ...).
    var formatName: String { context.pointee.iformat.map { String(cString: $0.pointee.name) } ?? "unknown" }

    /// Container duration in seconds, and whether FFmpeg only estimated it from the bit rate.
    var containerDuration: (seconds: Double, estimated: Bool)? {
        let duration = context.pointee.duration
        guard duration != prism_av_nopts_value(), duration > 0 else { return nil }
        return (Double(duration) / Double(prism_av_time_base()), context.pointee.duration_estimation_method == AVFMT_DURATION_FROM_BITRATE)
    }

    func stream(_ index: Int32) -> UnsafeMutablePointer<AVStream> { context.pointee.streams[Int(index)]! }

    /// Index of the best stream of a type, or nil when there is none.
    func bestStream(_ type: AVMediaType) -> Int32? {
        let index = av_find_best_stream(context, type, -1, -1, nil, 0)
        return index >= 0 ? index : nil
    }
}

/// An opened decoder for one stream of an ``AVInput``.
final class AVStreamDecoder {
    let context: UnsafeMutablePointer<AVCodecContext>
    let streamIndex: Int32
    let timeBase: AVRational
    private let frame: UnsafeMutablePointer<AVFrame>
    private let packet: UnsafeMutablePointer<AVPacket>

    /// `maxPixels` is handed to FFmpeg's own check (`max_pixels`), a second line behind ours.
    init(input: AVInput, streamIndex: Int32, kind: MediaFormat, maxPixels: Int? = nil) throws {
        let stream = input.stream(streamIndex)
        guard let codec = avcodec_find_decoder(stream.pointee.codecpar.pointee.codec_id) else {
            throw MediaError.notSupported("no decoder for codec \(String(cString: avcodec_get_name(stream.pointee.codecpar.pointee.codec_id)))")
        }
        guard let context = avcodec_alloc_context3(codec), let frame = av_frame_alloc(), let packet = av_packet_alloc() else {
            throw MediaError.libraryFailure("allocating a decoder")
        }
        self.context = context
        self.frame = frame
        self.packet = packet
        self.streamIndex = streamIndex
        self.timeBase = stream.pointee.time_base
        avcodec_parameters_to_context(context, stream.pointee.codecpar)
        context.pointee.pkt_timebase = stream.pointee.time_base
        // Decoding threads would multiply memory per request; the gateway parallelises across requests.
        context.pointee.thread_count = 1
        if let maxPixels { context.pointee.max_pixels = Int64(maxPixels) }
        let rc = avcodec_open2(context, codec, nil)
        guard rc >= 0 else { throw MediaError.corrupt(kind, detail: "opening decoder: \(avErrorText(rc))") }
    }

    deinit {
        var context: UnsafeMutablePointer<AVCodecContext>? = self.context
        avcodec_free_context(&context)
        var frame: UnsafeMutablePointer<AVFrame>? = self.frame
        av_frame_free(&frame)
        var packet: UnsafeMutablePointer<AVPacket>? = self.packet
        av_packet_free(&packet)
    }

    var codecName: String { String(cString: avcodec_get_name(context.pointee.codec_id)) }

    /// Reads packets of this stream and hands every decoded frame to `body` until the input ends
    /// or `body` returns false. Corrupt packets are skipped (FFmpeg conceals them), as players do;
    /// a stream that yields no frame at all is reported corrupt by the caller.
    func decodeAll(input: AVInput, kind: MediaFormat, _ body: (UnsafeMutablePointer<AVFrame>) throws -> Bool) throws {
        var keepGoing = true
        func drain() throws {
            while keepGoing {
                let rc = avcodec_receive_frame(context, frame)
                if rc == prism_averror_eagain() || rc == prism_averror_eof() { return }
                if rc < 0 { throw MediaError.corrupt(kind, detail: "decoding: \(avErrorText(rc))") }
                defer { av_frame_unref(frame) }
                keepGoing = try body(frame)
            }
        }
        while keepGoing {
            let rc = av_read_frame(input.context, packet)
            if rc < 0 {
                if rc != prism_averror_eof() && rc != -5 /* EIO at a truncated end */ {
                    throw MediaError.corrupt(kind, detail: "reading: \(avErrorText(rc))")
                }
                break
            }
            defer { av_packet_unref(packet) }
            guard packet.pointee.stream_index == streamIndex else { continue }
            let sent = avcodec_send_packet(context, packet)
            if sent < 0 && sent != prism_averror_eagain() { continue } // damaged packet: skip it
            try drain()
        }
        guard keepGoing else { return }
        avcodec_send_packet(context, nil)
        try drain()
    }

    /// Seeks the input to `seconds` (to the keyframe at or before it) and flushes the decoder.
    func seek(input: AVInput, to seconds: Double) -> Bool {
        let ts = Int64(seconds * Double(timeBase.den) / Double(timeBase.num))
        guard av_seek_frame(input.context, streamIndex, ts, AVSEEK_FLAG_BACKWARD) >= 0 else { return false }
        avcodec_flush_buffers(context)
        return true
    }
}
