// Exact nearest-neighbour search over the chunk embeddings of an index (hybrid retrieval): each
// index's vectors of one model held in memory as one contiguous float32 matrix, loaded on first
// use and dropped when the index is written; and reciprocal rank fusion of several rankings.
import Foundation

/// The vectors of one index and model, row by row.
public struct VectorMatrix: Sendable {
    var ids: [Int64] = []
    var dimensions = 0
    var values: [Float] = []

    public init() {}

    /// Adds a row; the first row sets the dimensions, and a row of another size is skipped (a
    /// model's vectors all have one size).
    public mutating func append(id: Int64, _ vector: [Float]) {
        if dimensions == 0 { dimensions = vector.count }
        guard vector.count == dimensions else { return }
        ids.append(id)
        values += vector
    }

    /// The `limit` rows nearest to `query` by dot product (cosine: both sides are normalised), best
    /// first. One pass over the matrix: a row enters the kept list only when it beats its worst.
    public func nearest(_ query: [Float], limit: Int) -> [(id: Int64, score: Float)] {
        guard dimensions == query.count, dimensions > 0, limit > 0 else { return [] }
        var best: [(row: Int, score: Float)] = []  // best first, at most `limit`
        best.reserveCapacity(limit + 1)
        values.withUnsafeBufferPointer { rows in
            query.withUnsafeBufferPointer { q in
                for row in 0..<ids.count {
                    let score = Self.dot(rows.baseAddress! + row * dimensions, q.baseAddress!, dimensions)
                    guard best.count < limit || score > best[best.count - 1].score else { continue }
                    var low = 0, high = best.count
                    while low < high {
                        let middle = (low + high) / 2
                        if best[middle].score >= score { low = middle + 1 } else { high = middle }
                    }
                    best.insert((row, score), at: low)
                    if best.count > limit { best.removeLast() }
                }
            }
        }
        return best.map { (ids[$0.row], $0.score) }
    }

    /// The dot product of two `count`-float arrays, eight lanes at a time (SIMD the compiler keeps
    /// as vector instructions; a plain loop is not vectorised, as float addition does not reassociate).
    static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ count: Int) -> Float {
        var lanes = SIMD8<Float>(repeating: 0)
        let x = UnsafeRawPointer(a), y = UnsafeRawPointer(b)
        var i = 0
        while i + 8 <= count {
            lanes += x.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self) * y.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
            i += 8
        }
        var sum = lanes.sum()
        while i < count {
            sum += a[i] * b[i]
            i += 1
        }
        return sum
    }
}

/// The matrices in memory, keyed by index and model; a write to an index drops its matrices.
/// Thread-safe: `lock` guards `matrices` and `generations` (a load runs outside it).
final class VectorCache: @unchecked Sendable {
    private let lock = NSLock()
    // Guarded by `lock`.
    private var matrices: [String: VectorMatrix] = [:]
    private var generations: [String: Int] = [:]

    /// The matrix of `index` and `model`, loaded by `load` when not held. A load that raced a
    /// write is used once but not kept, so the next search reads the new vectors.
    func matrix(index: String, model: String, load: () throws -> VectorMatrix) rethrows -> VectorMatrix {
        let key = index + "\u{0}" + model
        let (held, generation) = lock.withLock { (matrices[key], generations[index, default: 0]) }
        if let held { return held }
        let loaded = try load()
        lock.withLock { if generations[index, default: 0] == generation { matrices[key] = loaded } }
        return loaded
    }

    /// Drops the matrices of `index` (after a write to it).
    func invalidate(index: String) {
        lock.withLock {
            generations[index, default: 0] += 1
            matrices = matrices.filter { !$0.key.hasPrefix(index + "\u{0}") }
        }
    }
}

public enum VectorMath {
    /// Reciprocal rank fusion's constant: 60, as in Cormack et al. (2009), damps the top ranks.
    static let rrfK = 60.0

    /// `vector` scaled to length 1 (a zero vector stays zero).
    public static func normalized(_ vector: [Float]) -> [Float] {
        let norm = vector.reduce(0) { $0 + $1 * $1 }.squareRoot()
        return norm > 0 ? vector.map { $0 / norm } : vector
    }

    /// Ids ranked by the sum over `rankings` of 1 / (k + rank), best first.
    public static func fuse(_ rankings: [[Int64]]) -> [(id: Int64, score: Double)] {
        var scores: [Int64: Double] = [:], order: [Int64] = []
        for ranking in rankings {
            for (rank, id) in ranking.enumerated() {
                if scores[id] == nil { order.append(id) }
                scores[id, default: 0] += 1 / (rrfK + Double(rank + 1))
            }
        }
        return order.map { ($0, scores[$0]!) }.sorted { $0.score > $1.score }
    }

    public static func blob(_ vector: [Float]) -> Data {
        var data = Data(capacity: vector.count * 4)
        for value in vector { withUnsafeBytes(of: value.bitPattern.littleEndian) { data.append(contentsOf: $0) } }
        return data
    }

    public static func floats(_ blob: Data) -> [Float] {
        stride(from: 0, to: blob.count - blob.count % 4, by: 4).map { offset in
            let bits = UInt32(blob[blob.startIndex + offset]) | UInt32(blob[blob.startIndex + offset + 1]) << 8
                | UInt32(blob[blob.startIndex + offset + 2]) << 16 | UInt32(blob[blob.startIndex + offset + 3]) << 24
            return Float(bitPattern: bits)
        }
    }
}
