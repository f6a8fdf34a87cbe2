// Options of the CPU execution provider, as kernels read them
// (SessionOptions::provider_options["CPUExecutionProvider"]).
#pragma once

namespace graft {
class KernelInfo;
}

namespace graft::cpu {

// Option "int8_exact". "0" (the default): integer products (QLinearConv, ConvInteger,
// MatMulInteger and the fused int8 ops) use the CPU's fastest int8 instructions, as onnxruntime
// and OpenVINO do. Without VNNI those add neighbouring u8 * s8 products in saturating int16, so
// a sum can be off where large activations meet large weights (onnxruntime's documented
// reduce_range caveat). "1": every product accumulates exactly in int32, as the ONNX operators
// define it; where the int8 instructions could saturate, a float product of the integer values
// runs instead (about twice as slow). Kernels built outside a session are exact.
bool int8_exact(const KernelInfo& info);

}  // namespace graft::cpu
