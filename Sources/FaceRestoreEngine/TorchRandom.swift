// PyTorch's CPU random stream, so that a seeded run reproduces upstream's fresh-noise mode:
// `torch.manual_seed(s)` then `tensor.normal_()` on float32 tensors of ≥ 16 contiguous elements.
// Ports the algorithms of torch 1.13 (`aten/src/ATen/core/MT19937RNGEngine.h`,
// `core/TransformationHelper.h` uniform_real, `native/cpu/DistributionTemplates.h` normal_fill):
//   1. fill the tensor with uniforms u = (mt19937() & (2²⁴ − 1)) · 2⁻²⁴;
//   2. for each block of 16: for j < 8, r = √(−2·ln(1 − u[j])), θ = 2π·u[j+8],
//      x[j] = r·cos θ, x[j+8] = r·sin θ;
//   3. if the size is not a multiple of 16, redraw the last 16 uniforms and transform them again.
// Upstream's AVX2 build evaluates log/cos/sin with SLEEF (≤ 1 ulp), so values agree to ~1e-6.

import Foundation

/// MT19937 (32-bit Mersenne Twister) seeded as `torch.manual_seed` seeds its CPU generator.
public struct TorchGenerator: Sendable {
    private var state = [UInt32](repeating: 0, count: 624)
    private var index = 624

    public init(seed: UInt64) {
        state[0] = UInt32(truncatingIfNeeded: seed)
        for j in 1..<624 {
            let prev = state[j - 1]
            state[j] = 1_812_433_253 &* (prev ^ (prev >> 30)) &+ UInt32(j)
        }
    }

    public mutating func next() -> UInt32 {
        if index >= 624 { twist() }
        var y = state[index]
        index += 1
        y ^= y >> 11
        y ^= (y << 7) & 0x9D2C_5680
        y ^= (y << 15) & 0xEFC6_0000
        y ^= y >> 18
        return y
    }

    private mutating func twist() {
        for i in 0..<624 {
            let y = (state[i] & 0x8000_0000) | (state[(i + 1) % 624] & 0x7FFF_FFFF)
            state[i] = state[(i + 397) % 624] ^ (y >> 1) ^ ((y & 1) != 0 ? 0x9908_B0DF : 0)
        }
        index = 0
    }

    /// A float uniform in [0, 1) as torch's `uniform_real_distribution<float>` draws it.
    public mutating func uniformFloat() -> Float {
        Float(Double(next() & 0xFF_FFFF) / Double(1 << 24))
    }

    /// `count` standard normal floats as `torch.empty(count).normal_()` fills them (count ≥ 16).
    public mutating func normal(count: Int) -> [Float] {
        precondition(count >= 16, "torch's vectorized normal_ needs at least 16 elements")
        var data = (0..<count).map { _ in uniformFloat() }
        func transform16(_ base: Int) {
            for j in 0..<8 {
                let u1 = 1 - data[base + j], u2 = data[base + j + 8]
                let radius = (-2 * Foundation.log(u1)).squareRoot()
                let theta = 2 * Float.pi * u2
                data[base + j] = radius * Foundation.cos(theta)
                data[base + j + 8] = radius * Foundation.sin(theta)
            }
        }
        for base in stride(from: 0, to: count - 15, by: 16) { transform16(base) }
        if count % 16 != 0 {
            let base = count - 16
            for i in 0..<16 { data[base + i] = uniformFloat() }
            transform16(base)
        }
        return data
    }
}
