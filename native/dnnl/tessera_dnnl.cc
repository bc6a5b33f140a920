// Convolutions for Node workers through oneDNN (Debian's libdnnl-dev), what
// PyTorch's CPU convolutions run on: an optional N-API addon, built by
// native/build.sh and used by runtime/node/dnnl-kernels.ts when present.
//
// One entry point, conv(kind, a, b, out, params[, bias]): a forward
// convolution (kind 0: a = input, b = filter, out = output), its input
// gradient (1: a = output gradient, b = filter, out = input gradient) or its
// filter gradient (2: a = input, b = output gradient, out = filter gradient).
// Tensors are Float32Arrays in tfjs's layouts (NHWC activations, HWIO
// filters), typically views of the wasm backend's heap, read and written in
// place. params (Int32Array): n, ih, iw, ic, oc, kh, kw, oh, ow, sh, sw, dh,
// dw, padTop, padLeft, padBottom, padRight, activation (0 none, 1 relu, 2
// leaky relu, forward only), then leaky relu's alpha x 1e6.
//
// oneDNN picks its own layouts (format any) and the user's are reordered to
// and from them; a primitive, its reorders and their buffers are made once per
// shape and kept. Threads: setThreads(n) (OpenMP).
//
// And sum(x, out, dims): tfjs's Sum over any axes (dims: x's, then out's with
// 1 on the reduced axes), in plain C++.
#include <node_api.h>
#include <omp.h>

#include <dnnl.hpp>
#include <algorithm>
#include <memory>
#include <string>
#include <unordered_map>

using dnnl::algorithm;
using dnnl::engine;
using dnnl::memory;
using dnnl::primitive;
using dnnl::prop_kind;
using dnnl::stream;
using tag = memory::format_tag;

namespace {

constexpr int PARAMS = 19;

engine &cpu() {
  static engine e(engine::kind::cpu, 0);
  return e;
}

// A process may run tfjs on several threads (the coordinator's main thread draws sample grids while its scoring thread
// scores): each thread has its own stream and plans, so no plan's scratch buffers are shared between two calls at once.
stream &queue() {
  thread_local stream s(cpu());
  return s;
}

// One tensor of a plan: the layout the caller gives, the one oneDNN chose, and a buffer in the latter when they differ.
struct Operand {
  memory::desc user;
  memory::desc inner;
  int arg;
  memory buffer;
  primitive reorder;  // user to inner for an input, inner to user for the output; made once

  Operand(const memory::desc &user_desc, const memory::desc &inner_desc, int argument, bool is_output = false)
      : user(user_desc), inner(inner_desc), arg(argument) {
    if (user == inner) return;
    buffer = memory(inner, cpu());
    reorder = is_output ? dnnl::reorder(dnnl::reorder::primitive_desc(cpu(), inner, cpu(), user))
                        : dnnl::reorder(dnnl::reorder::primitive_desc(cpu(), user, cpu(), inner));
  }
  bool reordered() const { return user != inner; }
};

struct Plan {
  primitive run;
  std::unique_ptr<Operand> a, b, out, bias;
};

thread_local std::unordered_map<std::string, std::unique_ptr<Plan>> plans;

std::unique_ptr<Plan> make_plan(int kind, const int *p) {
  const memory::dim n = p[0], ih = p[1], iw = p[2], ic = p[3], oc = p[4], kh = p[5], kw = p[6], oh = p[7], ow = p[8];
  const memory::dims strides = {p[9], p[10]}, dilates = {p[11] - 1, p[12] - 1};
  const memory::dims pad_l = {p[13], p[14]}, pad_r = {p[15], p[16]};
  const memory::dims x_dims = {n, ic, ih, iw}, w_dims = {oc, ic, kh, kw}, y_dims = {n, oc, oh, ow};
  const auto f32 = memory::data_type::f32;
  const memory::desc x_user(x_dims, f32, tag::nhwc), w_user(w_dims, f32, tag::hwio), y_user(y_dims, f32, tag::nhwc);
  const memory::desc x_any(x_dims, f32, tag::any), w_any(w_dims, f32, tag::any), y_any(y_dims, f32, tag::any);
  const bool with_bias = kind == 0 && p[PARAMS] != 0;
  const memory::desc b_user({oc}, f32, tag::x);

  auto plan = std::make_unique<Plan>();
  const auto forward_desc = with_bias ? dnnl::convolution_forward::desc(prop_kind::forward_training, algorithm::convolution_direct, x_any,
                                                                        w_any, b_user, y_any, strides, dilates, pad_l, pad_r)
                                      : dnnl::convolution_forward::desc(prop_kind::forward_training, algorithm::convolution_direct, x_any,
                                                                        w_any, y_any, strides, dilates, pad_l, pad_r);
  dnnl::primitive_attr attr;
  if (kind == 0 && p[17] != 0) {
    dnnl::post_ops ops;
    ops.append_eltwise(1.0f, algorithm::eltwise_relu, p[17] == 2 ? p[18] / 1e6f : 0.0f, 0.0f);
    attr.set_post_ops(ops);
  }
  const dnnl::convolution_forward::primitive_desc forward(forward_desc, attr, cpu());
  if (kind == 0) {
    plan->run = dnnl::convolution_forward(forward);
    plan->a = std::make_unique<Operand>(x_user, forward.src_desc(), DNNL_ARG_SRC);
    plan->b = std::make_unique<Operand>(w_user, forward.weights_desc(), DNNL_ARG_WEIGHTS);
    plan->out = std::make_unique<Operand>(y_user, forward.dst_desc(), DNNL_ARG_DST, true);
    if (with_bias) plan->bias = std::make_unique<Operand>(b_user, b_user, DNNL_ARG_BIAS);
  } else if (kind == 1) {
    const dnnl::convolution_backward_data::desc desc(algorithm::convolution_direct, x_any, w_any, y_any, strides, dilates, pad_l, pad_r);
    const dnnl::convolution_backward_data::primitive_desc pd(desc, cpu(), forward);
    plan->run = dnnl::convolution_backward_data(pd);
    plan->a = std::make_unique<Operand>(y_user, pd.diff_dst_desc(), DNNL_ARG_DIFF_DST);
    plan->b = std::make_unique<Operand>(w_user, pd.weights_desc(), DNNL_ARG_WEIGHTS);
    plan->out = std::make_unique<Operand>(x_user, pd.diff_src_desc(), DNNL_ARG_DIFF_SRC, true);
  } else {
    const dnnl::convolution_backward_weights::desc desc(algorithm::convolution_direct, x_any, w_any, y_any, strides, dilates, pad_l, pad_r);
    const dnnl::convolution_backward_weights::primitive_desc pd(desc, cpu(), forward);
    plan->run = dnnl::convolution_backward_weights(pd);
    plan->a = std::make_unique<Operand>(x_user, pd.src_desc(), DNNL_ARG_SRC);
    plan->b = std::make_unique<Operand>(y_user, pd.diff_dst_desc(), DNNL_ARG_DIFF_DST);
    plan->out = std::make_unique<Operand>(w_user, pd.diff_weights_desc(), DNNL_ARG_DIFF_WEIGHTS, true);
  }
  return plan;
}

Plan &plan_for(int kind, const int *p) {
  std::string key = std::to_string(kind);
  for (int i = 0; i < PARAMS; i++) key += ',' + std::to_string(p[i]);
  key += p[PARAMS] != 0 ? ",b" : "";
  auto found = plans.find(key);
  if (found != plans.end()) return *found->second;
  auto &slot = plans[key];
  slot = make_plan(kind, p);
  return *slot;
}

// Runs a plan on the caller's buffers: inputs reordered into oneDNN's layouts where they differ, the output back.
void execute(Plan &plan, float *a, float *b, float *out, float *bias) {
  auto &s = queue();
  std::unordered_map<int, memory> args;
  auto input = [&](Operand &operand, float *data) {
    memory user(operand.user, cpu(), data);
    if (operand.reordered()) {
      operand.reorder.execute(s, {{DNNL_ARG_FROM, user}, {DNNL_ARG_TO, operand.buffer}});
      args.insert({operand.arg, operand.buffer});
    } else {
      args.insert({operand.arg, user});
    }
  };
  input(*plan.a, a);
  input(*plan.b, b);
  if (plan.bias) input(*plan.bias, bias);
  memory result(plan.out->user, cpu(), out);
  args.insert({plan.out->arg, plan.out->reordered() ? plan.out->buffer : result});
  plan.run.execute(s, args);
  if (plan.out->reordered()) plan.out->reorder.execute(s, {{DNNL_ARG_FROM, plan.out->buffer}, {DNNL_ARG_TO, result}});
  s.wait();
}

napi_value fail(napi_env env, const char *message) {
  napi_throw_error(env, "TESSERA_DNNL", message);
  return nullptr;
}

// The data of a Float32Array (or Int32Array) argument, and its element count.
template <typename T>
T *typed_data(napi_env env, napi_value value, napi_typedarray_type expected, size_t *length) {
  bool is_typed = false;
  if (napi_is_typedarray(env, value, &is_typed) != napi_ok || !is_typed) return nullptr;
  napi_typedarray_type type;
  void *data = nullptr;
  if (napi_get_typedarray_info(env, value, &type, length, &data, nullptr, nullptr) != napi_ok || type != expected) return nullptr;
  return static_cast<T *>(data);
}

napi_value conv(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  if (argc < 5) return fail(env, "conv(kind, a, b, out, params[, bias])");
  int32_t kind = -1;
  napi_get_value_int32(env, argv[0], &kind);
  if (kind < 0 || kind > 2) return fail(env, "kind must be 0 (forward), 1 (input gradient) or 2 (filter gradient)");
  size_t lengths[5] = {0, 0, 0, 0, 0};
  float *a = typed_data<float>(env, argv[1], napi_float32_array, &lengths[0]);
  float *b = typed_data<float>(env, argv[2], napi_float32_array, &lengths[1]);
  float *out = typed_data<float>(env, argv[3], napi_float32_array, &lengths[2]);
  const int32_t *p = typed_data<int32_t>(env, argv[4], napi_int32_array, &lengths[3]);
  float *bias = argc > 5 ? typed_data<float>(env, argv[5], napi_float32_array, &lengths[4]) : nullptr;
  if (!a || !b || !out || !p || lengths[3] != PARAMS) return fail(env, "a, b and out must be Float32Arrays, params an Int32Array of 19");
  const size_t x = size_t(p[0]) * p[1] * p[2] * p[3], w = size_t(p[5]) * p[6] * p[3] * p[4], y = size_t(p[0]) * p[7] * p[8] * p[4];
  const size_t want[3][3] = {{x, w, y}, {y, w, x}, {x, y, w}};
  if (lengths[0] != want[kind][0] || lengths[1] != want[kind][1] || lengths[2] != want[kind][2])
    return fail(env, "tensor lengths do not match params");
  if (bias && lengths[4] != size_t(p[4])) return fail(env, "bias length must be the output channels");
  int extended[PARAMS + 1];
  for (int i = 0; i < PARAMS; i++) extended[i] = p[i];
  extended[PARAMS] = bias != nullptr;
  try {
    execute(plan_for(kind, extended), a, b, out, bias);
  } catch (const dnnl::error &error) {
    return fail(env, error.what());
  }
  return nullptr;
}

// out[j] = sum of x over the axes where out_dims is 1 (x's dims otherwise), both row-major, rank <= 6. Plain C++,
// one pass over x: wasm's Sum transposes the reduced axes inward first, which costs more than the sum.
void reduce_sum(const float *x, float *out, const int64_t *dims, const int64_t *out_dims, int rank) {
  int64_t out_size = 1;
  for (int i = 0; i < rank; i++) out_size *= out_dims[i];
  std::fill(out, out + out_size, 0.0f);
  int64_t out_stride[6] = {0, 0, 0, 0, 0, 0};
  for (int i = rank - 1, stride = 1; i >= 0; i--) {
    out_stride[i] = out_dims[i] == 1 ? 0 : stride;
    stride *= int(out_dims[i]);
  }
  const int64_t inner = dims[rank - 1];
  const bool inner_reduced = out_stride[rank - 1] == 0;
  int64_t index[6] = {0, 0, 0, 0, 0, 0};
  int64_t rows = 1;
  for (int i = 0; i < rank - 1; i++) rows *= dims[i];
  for (int64_t row = 0; row < rows; row++, x += inner) {
    int64_t at = 0;
    for (int i = 0; i < rank - 1; i++) at += index[i] * out_stride[i];
    float *o = out + at;
    if (inner_reduced) {
      float sum = 0;
      for (int64_t k = 0; k < inner; k++) sum += x[k];
      *o += sum;
    } else {
      for (int64_t k = 0; k < inner; k++) o[k] += x[k];
    }
    for (int i = rank - 2; i >= 0 && ++index[i] == dims[i]; i--) index[i] = 0;
  }
}

napi_value sum(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  if (argc < 3) return fail(env, "sum(x, out, dims)");
  size_t lengths[3] = {0, 0, 0};
  const float *x = typed_data<float>(env, argv[0], napi_float32_array, &lengths[0]);
  float *out = typed_data<float>(env, argv[1], napi_float32_array, &lengths[1]);
  const int32_t *d = typed_data<int32_t>(env, argv[2], napi_int32_array, &lengths[2]);
  const int rank = int(lengths[2] / 2);
  if (!x || !out || !d || lengths[2] % 2 != 0 || rank < 1 || rank > 6) return fail(env, "x and out must be Float32Arrays, dims an Int32Array of x's dims then out's (rank 1 to 6)");
  int64_t dims[6], out_dims[6];
  size_t x_size = 1, out_size = 1;
  for (int i = 0; i < rank; i++) {
    dims[i] = d[i];
    out_dims[i] = d[rank + i];
    if (out_dims[i] != 1 && out_dims[i] != dims[i]) return fail(env, "out's dims must be x's or 1");
    x_size *= size_t(dims[i]);
    out_size *= size_t(out_dims[i]);
  }
  if (lengths[0] != x_size || lengths[1] != out_size || x_size == 0) return fail(env, "tensor lengths do not match dims");
  reduce_sum(x, out, dims, out_dims, rank);
  return nullptr;
}

napi_value set_threads(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  int32_t threads = 1;
  if (argc > 0) napi_get_value_int32(env, argv[0], &threads);
  omp_set_num_threads(threads < 1 ? 1 : threads);
  return nullptr;
}

napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor methods[] = {
      {"conv", nullptr, conv, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"setThreads", nullptr, set_threads, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"sum", nullptr, sum, nullptr, nullptr, nullptr, napi_default, nullptr},
  };
  napi_define_properties(env, exports, 3, methods);
  return exports;
}

}  // namespace

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
