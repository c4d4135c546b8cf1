// `facerestore flicker`: the flicker measure of a video (VideoFlicker): the mean absolute
// frame-to-frame difference inside a region, the region's motion compensated. scripts/flicker.sh
// compares temporal mode with --no-temporal on a still face with it.

import ArgumentParser
import FaceRestore
import Foundation

struct Flicker: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure a video's frame-to-frame flicker inside a region (mean absolute difference, motion compensated).")

    @Argument(help: "Video files.")
    var videos: [String]

    @Option(name: .long, help: ArgumentHelp("The region: x,y,width,height in stored frame pixels.", valueName: "x,y,w,h"))
    var region: String

    @Option(name: .customLong("max-shift"), help: "Largest whole-pixel motion compensated, in each direction.")
    var maxShift = 4

    func validate() throws {
        if parsedRegion == nil { throw ValidationError("--region takes x,y,width,height: four integers, width and height positive") }
        if !(0...64).contains(maxShift) { throw ValidationError("--max-shift must be between 0 and 64") }
    }

    var parsedRegion: VideoFlicker.Region? {
        let v = region.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard v.count == 4, v[0] >= 0, v[1] >= 0, v[2] > 0, v[3] > 0 else { return nil }
        return VideoFlicker.Region(x: v[0], y: v[1], width: v[2], height: v[3])
    }

    func run() throws {
        guard let r = parsedRegion else { return }
        for video in videos {
            let value = try VideoFlicker.measure(path: video, region: r, maxShift: maxShift)
            print(String(format: "%@: %.3f", video, value))
        }
    }
}
