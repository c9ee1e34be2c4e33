// Decodes audio that arrives in pieces (as in the Transcribe RPC) while it arrives: the bytes go
// through a bounded buffer to FFmpeg running on its own thread, and PCM comes out as it is decoded.
import CPrismMedia
import Foundation

/// Push-style decoding with bounded memory.
///
/// `feed` blocks while the buffer (``MediaLimits/streamingBufferBytes``) is full, which is how a
/// slow decoder slows the sender; call it off any event loop. `onPCM` runs on the decoder's thread.
/// Containers that need seeking (an MP4/M4A whose index is at the end) cannot be streamed and fail
/// with `.corrupt`; WAV, MP3, FLAC, Ogg/Opus, ADTS AAC, WebM and raw PCM stream fine.
/// Always end with ``finish()`` or ``cancel()``: until then the decoder thread waits for bytes.
public final class StreamingAudioDecoder: @unchecked Sendable {
    /// What the stream turned out to be, and how much was decoded.
    public struct Summary: Sendable {
        public var source: AudioInfo
        public var duration: Double
        public var resampledWithSoxr: Bool
        /// Most bytes ever waiting in the buffer (never above the limit).
        public var peakBufferedBytes: Int
    }

    public let output: PCMFormat
    private let raw: PCMFormat?
    private let limits: MediaLimits
    private let onPCM: (Data) -> Void

    // Guarded by `condition`.
    private let condition = NSCondition()
    private var buffer: [UInt8] = []
    private var readIndex = 0
    private var inputEnded = false
    private var cancelled = false
    private var decoderDone = false
    private var result: Result<Summary, Error>?
    private var peak = 0
    private var started = false
    private var decodedBytes = 0
    private var head = Data()

    /// - Parameters:
    ///   - raw: describes headerless PCM input; nil lets FFmpeg recognize the container.
    ///   - onPCM: receives interleaved PCM of `output` in the order decoded, on the decoder thread.
    public init(output: PCMFormat = .speech, raw: PCMFormat? = nil, limits: MediaLimits = .standard,
                onPCM: @escaping (Data) -> Void) {
        self.output = output
        self.raw = raw
        self.limits = limits
        self.onPCM = onPCM
    }

    /// Adds bytes; blocks while the buffer is full. Throws the decoder's error if it already failed.
    public func feed(_ bytes: Data) throws {
        try startIfNeeded()
        var offset = bytes.startIndex
        condition.lock()
        defer { condition.unlock() }
        // Kept to sniff the format for the summary (FFmpeg consumes the bytes themselves).
        if head.count < 4096 { head.append(bytes.prefix(4096 - head.count)) }
        while offset < bytes.endIndex {
            while bufferedCount >= limits.streamingBufferBytes && !decoderDone && !cancelled { condition.wait() }
            if case let .failure(error)? = result { throw error }
            if decoderDone || cancelled { throw MediaError.invalidTarget("the stream already ended") }
            if readIndex > 0 && readIndex == buffer.count { buffer.removeAll(keepingCapacity: true); readIndex = 0 }
            if readIndex > limits.streamingBufferBytes { buffer.removeFirst(readIndex); readIndex = 0 }
            let take = min(limits.streamingBufferBytes - bufferedCount, bytes.endIndex - offset)
            buffer.append(contentsOf: bytes[offset ..< offset + take])
            offset += take
            peak = max(peak, bufferedCount)
            condition.broadcast()
        }
    }

    /// Marks the end of input, waits for the decoder to drain, and returns what was decoded.
    public func finish() throws -> Summary {
        try startIfNeeded()
        condition.lock()
        defer { condition.unlock() }
        inputEnded = true
        condition.broadcast()
        while !decoderDone { condition.wait() }
        return try result!.get()
    }

    /// Stops decoding; `feed` and `finish` then throw.
    public func cancel() {
        condition.lock()
        cancelled = true
        condition.broadcast()
        condition.unlock()
    }

    private var bufferedCount: Int { buffer.count - readIndex }

    private func startIfNeeded() throws {
        condition.lock()
        defer { condition.unlock() }
        guard !started else { return }
        started = true
        let thread = Thread { [self] in self.decodeLoop() }
        thread.name = "prism-audio-stream"
        thread.start()
    }

    private func decodeLoop() {
        let outcome: Result<Summary, Error> = Result {
            let opaque = Unmanaged.passUnretained(self).toOpaque()
            let read: PrismAVReadFn = { opaque, destination, size in
                Unmanaged<StreamingAudioDecoder>.fromOpaque(opaque!).takeUnretainedValue().read(destination!, Int(size))
            }
            let input = try AVInput(read: read, opaque: opaque, probeBytes: min(limits.probeBytes, limits.streamingBufferBytes),
                                    formatName: raw?.sample.rawDemuxer,
                                    options: raw.map { "sample_rate=\($0.sampleRate):channels=\($0.channels)" })
            condition.lock()
            let format = raw == nil ? MediaSniffer.sniff(head) : .wav
            condition.unlock()
            let (info, soxr) = try AudioDecoder.run(input, format: format, output: output, limits: limits, seekable: false) { pcm in
                decodedBytes += pcm.count
                onPCM(Data(pcm))
            }
            condition.lock()
            defer { condition.unlock() }
            if cancelled { throw MediaError.invalidTarget("cancelled") }
            return Summary(source: info, duration: Double(decodedBytes) / Double(output.bytesPerSecond),
                           resampledWithSoxr: soxr, peakBufferedBytes: peak)
        }
        condition.lock()
        result = outcome
        decoderDone = true
        condition.broadcast()
        condition.unlock()
    }

    /// FFmpeg's read callback: waits for bytes, returns 0 at the end of input, -1 when cancelled.
    private func read(_ destination: UnsafeMutablePointer<UInt8>, _ size: Int) -> Int32 {
        condition.lock()
        defer { condition.unlock() }
        while bufferedCount == 0 && !inputEnded && !cancelled { condition.wait() }
        if cancelled { return -1 }
        let count = min(size, bufferedCount)
        if count == 0 { return 0 }
        buffer.withUnsafeBufferPointer { source in
            destination.update(from: source.baseAddress! + readIndex, count: count)
        }
        readIndex += count
        condition.broadcast()
        return Int32(count)
    }
}
