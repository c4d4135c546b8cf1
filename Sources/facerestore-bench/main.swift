import FaceRestoreEngine
import Foundation
let ctx = ComputeContext(threads: Int(ProcessInfo.processInfo.environment["T"] ?? "2")!)
func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }
let c = 128, hw = 256
var w = [Float](repeating: 0, count: c*c*9); for i in w.indices { w[i] = Float.random(in: -0.05...0.05) }
let conv = try Conv2d(weight: w, shape: [c,c,3,3], bias: [Float](repeating: 0.1, count: c), padding: Padding2D(1), hint: (hw,hw), context: ctx)
let x0 = Tensor(shape: [1,c,hw,hw], repeating: 0.5)
let xn = try ctx.channelsLast(x0)
let chained = try conv(xn, ctx)
for (name, x) in [("nchw", x0), ("nhwc", xn), ("chained", chained)] {
  _ = try conv(x, ctx)
  let t0 = now(); for _ in 0..<10 { _ = try conv(x, ctx) }; let dt = (now()-t0)/10
  print(name, try conv.implementation(for: x, ctx), "\(x.layout)", String(format: "%.1f ms %.0f GFLOPS", dt*1000, 2.0*Double(c*c*9*hw*hw)/dt/1e9))
}
