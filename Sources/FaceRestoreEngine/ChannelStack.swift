// Dense-block feature stacks without copies (ESRGAN's ResidualDenseBlock: each conv sees
// `torch.cat` of the block input and every earlier output).
//
// In oneDNN's nChw16c layout with batch 1, channels are the outermost blocked dim, so channels
// [a, a + k) of a tensor (a and k multiples of 16) are themselves a dense nChw16c tensor of k
// channels at offset a·H·W floats. A stack allocates the whole block's channels once; each conv
// writes its output straight into the next range and the growing prefix is the concatenation.
// Other shapes and layouts fall back to `concat`.

/// A growing channel concatenation `cat([x, y₁, y₂, …], dim: 1)`.
public struct ChannelStack {
    private let buffer: Tensor?       // [1, capacity, H, W] nChw16c, when the zero-copy form applies
    private var parts: [Tensor]       // the fallback: tensors to concatenate
    public private(set) var channels: Int
    /// The first part (the block input).
    public let head: Tensor

    /// A stack holding `first`, with room for `capacity` channels in all.
    public init(_ first: Tensor, capacity: Int, _ ctx: ComputeContext) throws {
        guard first.rank == 4, capacity >= first.shape[1] else {
            throw EngineError.shapeMismatch(op: "channel_stack", detail: "\(first.shape) in \(capacity) channels")
        }
        let (n, c, h, w) = (first.shape[0], first.shape[1], first.shape[2], first.shape[3])
        channels = c
        if n == 1, c % 16 == 0, capacity % 16 == 0 {
            let whole = Tensor(uninitialized: .channelBlocked16([1, capacity, h, w]))
            buffer = whole
            parts = []
            let head = Self.range(of: whole, start: 0, count: c)
            try ctx.reorder(from: first.desc, first.storage.pointer, to: head.desc, head.storage.pointer)
            self.head = head
        } else {
            buffer = nil
            parts = [first]
            head = first
        }
    }

    /// An empty stack for a `[1, c, h, w]` first part that the caller writes into `head` (the op
    /// producing it writes there directly, so nothing is copied in), with room for `capacity`
    /// channels; nil where the zero-copy form does not apply (batch above 1, channel counts not
    /// multiples of 16).
    public static func awaiting(_ shape: [Int], capacity: Int) -> (stack: ChannelStack, head: Tensor)? {
        guard shape.count == 4, shape[0] == 1, shape[1] % 16 == 0, capacity % 16 == 0, capacity >= shape[1] else { return nil }
        let whole = Tensor(uninitialized: .channelBlocked16([1, capacity, shape[2], shape[3]]))
        let head = range(of: whole, start: 0, count: shape[1])
        return (ChannelStack(buffer: whole, head: head), head)
    }

    private init(buffer: Tensor, head: Tensor) {
        self.buffer = buffer
        parts = []
        channels = head.shape[1]
        self.head = head
    }

    /// Channels [start, start + count) of an nChw16c batch-1 tensor, as a tensor sharing its memory.
    static func range(of t: Tensor, start: Int, count: Int) -> Tensor {
        let (h, w) = (t.shape[2], t.shape[3])
        let desc = MemoryDesc.channelBlocked16([1, count, h, w])
        return Tensor(desc: desc, storage: TensorStorage(viewOf: t.storage, offset: start * h * w * 4, bytes: desc.byteSize))
    }

    /// The concatenation so far.
    public func tensor(_ ctx: ComputeContext) throws -> Tensor {
        if let buffer { return Self.range(of: buffer, start: 0, count: channels) }
        return parts.count == 1 ? parts[0] : try ctx.concat(parts)
    }

    /// Appends `conv(tensor)`.
    public mutating func append(_ conv: Conv2d, _ ctx: ComputeContext) throws {
        let input = try tensor(ctx)
        let k = conv.outChannels
        if let buffer, k % 16 == 0, channels + k <= buffer.shape[1] {
            try conv(input, into: Self.range(of: buffer, start: channels, count: k), ctx)
            channels += k
            return
        }
        let y = try conv(input, ctx)
        if buffer != nil {
            // A range that does not fit the blocked form: continue as a plain concatenation.
            self = ChannelStack(parts: [input, y], head: head)
        } else {
            parts.append(y)
            channels += k
        }
    }

    private init(parts: [Tensor], head: Tensor) {
        buffer = nil
        self.parts = parts
        channels = parts.reduce(0) { $0 + $1.shape[1] }
        self.head = head
    }
}
