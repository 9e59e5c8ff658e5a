"""The parameter names each engine accepts, for checking ``extra:`` keys on the host before
any run (issue 15): the harness would otherwise find a typo 10-25 s into a run, then retry.

Made from the pinned lists the mappings are tested against (tests/unit/llem_harness/
backends/data/: vLLM 0.33.0, TensorRT-LLM 1.2) and from transformers 5.23.0; written and kept
equal to them by ``python tests/unit/llem/config/test_engine_names.py``.
"""

from __future__ import annotations

VERSIONS = {"vllm": "0.33.0", "tensorrt": "1.2", "transformers": "5.23.0"}

#: transformers: GenerationConfig fields and generate() arguments
PYTORCH_GENERATE: frozenset[str] = frozenset({
    "assistant_confidence_threshold", "assistant_early_exit", "assistant_ensemble_weight",
    "assistant_lookbehind", "assistant_model", "bad_words_ids", "begin_suppress_tokens",
    "bos_token_id", "cache_config", "cache_implementation", "compile_config", "constraints",
    "continuous_batching_config", "custom_generate", "decoder_start_token_id",
    "disable_compile", "diversity_penalty", "do_sample", "dola_layers", "early_stopping",
    "encoder_no_repeat_ngram_size", "encoder_repetition_penalty", "eos_token_id",
    "epsilon_cutoff", "eta_cutoff", "exponential_decay_length_penalty", "force_words_ids",
    "forced_bos_token_id", "forced_eos_token_id", "guidance_scale", "is_assistant",
    "length_penalty", "logits_processor", "low_memory", "max_cache_len", "max_length",
    "max_matching_ngram_size", "max_new_tokens", "max_time", "min_length", "min_new_tokens",
    "min_p", "negative_prompt_attention_mask", "negative_prompt_ids",
    "no_repeat_ngram_size", "num_assistant_tokens", "num_assistant_tokens_schedule",
    "num_beam_groups", "num_beams", "num_return_sequences", "output_attentions",
    "output_hidden_states", "output_logits", "output_scores", "pad_token_id",
    "penalty_alpha", "prefill_chunk_size", "prefix_allowed_tokens_fn",
    "prompt_lookup_num_tokens", "remove_invalid_values", "renormalize_logits",
    "repetition_penalty", "return_dict_in_generate", "sequence_bias", "speculation_type",
    "stop_strings", "stopping_criteria", "streamer", "suppress_tokens", "synced_gpus",
    "target_lookbehind", "temperature", "token_healing", "top_h", "top_k", "top_p",
    "transformers_version", "typical_p", "use_cache", "use_mtp", "watermarking_config",
})


#: forward() arguments every decoder model takes (generate passes them on)
PYTORCH_MODEL_KWARGS: frozenset[str] = frozenset({
    "attention_mask", "position_ids", "past_key_values", "inputs_embeds", "use_cache",
    "output_attentions", "output_hidden_states", "return_dict", "cache_position",
    "logits_to_keep", "token_type_ids",
})


#: vllm.EngineArgs
VLLM_ENGINE_ARGS: frozenset[str] = frozenset({
    "additional_config", "aggregate_engine_logging", "all2all_backend",
    "allow_deprecated_quantization", "allowed_local_media_path", "allowed_media_domains",
    "async_scheduling", "attention_backend", "attention_config", "aux_output_config",
    "block_size", "code_revision", "collect_detailed_traces", "compilation_config",
    "config_format", "convert", "cp_kv_cache_interleave_size",
    "cpu_distributed_timeout_seconds", "cpu_offload_gb", "cpu_offload_params",
    "cudagraph_capture_sizes", "cudagraph_metrics", "custom_histogram_buckets",
    "data_parallel_address", "data_parallel_backend", "data_parallel_external_lb",
    "data_parallel_hybrid_lb", "data_parallel_multi_port_external_lb", "data_parallel_rank",
    "data_parallel_rpc_port", "data_parallel_size", "data_parallel_size_local",
    "data_parallel_start_rank", "dbo_decode_token_threshold", "dbo_prefill_token_threshold",
    "dcp_comm_backend", "dcp_kv_cache_interleave_size", "dcp_q_replicate",
    "decode_context_parallel_size", "default_mm_loras", "device_ids", "diffusion_config",
    "disable_cascade_attn", "disable_chunked_mm_input", "disable_custom_all_reduce",
    "disable_hybrid_kv_cache_manager", "disable_log_stats",
    "disable_nccl_for_dp_synchronization", "disable_sliding_window",
    "distributed_executor_backend", "distributed_timeout_seconds", "download_dir",
    "dp_sync_interval", "dtype", "ec_manager_config", "ec_transfer_config",
    "elastic_ep_max_dp_size", "enable_batch_sharded_sampling", "enable_chunked_prefill",
    "enable_cumem_allocator", "enable_dbo", "enable_elastic_ep", "enable_ep_weight_filter",
    "enable_eplb", "enable_expert_parallel", "enable_fault_tolerance",
    "enable_flashinfer_autotune", "enable_hc_sp", "enable_layerwise_nvtx_tracing",
    "enable_logging_iteration_details", "enable_lora",
    "enable_mamba_cache_stochastic_rounding", "enable_mamba_shared_prefix_checkpoint",
    "enable_mfu_metrics", "enable_mixed_moe_lora_format", "enable_mm_embeds",
    "enable_mm_processor_stats", "enable_moe_shared_loras", "enable_nccl_comm_suspend",
    "enable_prefix_caching", "enable_prompt_embeds", "enable_return_routed_experts",
    "enable_shm_tensor_arena", "enable_sleep_mode", "enable_tower_connector_lora",
    "enable_trace_replay", "enforce_eager", "engram_config", "eplb_config",
    "expert_placement_strategy", "fail_on_environ_validation", "fault_tolerance_config",
    "fully_sharded_loras", "gdn_prefill_backend", "generation_config",
    "gpu_memory_utilization", "hf_config_path", "hf_overrides", "hf_token",
    "ignore_patterns", "interleave_mm_strings", "io_processor_plugin", "ir_op_priority",
    "jit_monitor_mode", "jit_monitor_verbose", "kda_decode_backend", "kda_prefill_backend",
    "kernel_config", "kv_cache_dtype", "kv_cache_dtype_skip_layers",
    "kv_cache_memory_bytes", "kv_cache_metrics", "kv_cache_metrics_sample",
    "kv_events_config", "kv_offloading_backend", "kv_offloading_size",
    "kv_sharing_fast_prefill", "kv_transfer_config", "language_model_only",
    "limit_mm_per_prompt", "linear_backend", "load_format", "log_config_file", "log_level",
    "logging_config", "logits_processors", "logprobs_mode", "long_prefill_token_threshold",
    "long_prefill_token_threshold_adaptive", "lora_dtype", "lora_target_modules",
    "mamba_backend", "mamba_block_size", "mamba_cache_dtype", "mamba_cache_mode",
    "mamba_cache_philox_rounds", "mamba_config", "mamba_ssm_cache_dtype",
    "mamba_ssu_algorithm", "master_addr", "master_port", "max_cpu_loras",
    "max_cudagraph_capture_size", "max_logprobs", "max_lora_cls_labels", "max_lora_rank",
    "max_loras", "max_model_len", "max_num_active_seqs", "max_num_batched_tokens",
    "max_num_queued_reqs", "max_num_queued_tokens", "max_num_scheduled_tokens",
    "max_num_seqs", "max_parallel_loading_workers", "media_io_kwargs",
    "mm_device_do_normalize", "mm_encoder_attn_backend", "mm_encoder_attn_dtype",
    "mm_encoder_fp8_scale_path", "mm_encoder_fp8_scale_save_margin",
    "mm_encoder_fp8_scale_save_path", "mm_encoder_only", "mm_encoder_tp_mode",
    "mm_hasher_algorithm", "mm_ipc_gpu_memory_gb", "mm_processor_cache_gb",
    "mm_processor_cache_type", "mm_processor_device", "mm_processor_kwargs",
    "mm_shm_cache_max_object_size_mb", "mm_tensor_ipc", "model", "model_class_overrides",
    "model_impl", "model_loader_extra_config", "model_weights", "moe_backend", "monokernel",
    "nnodes", "node_rank", "num_gpu_blocks_override", "numa_bind", "numa_bind_cpus",
    "numa_bind_nodes", "offload_backend", "offload_group_size", "offload_num_in_group",
    "offload_params", "offload_prefetch_step", "optimization_level", "otlp_traces_endpoint",
    "override_generation_config", "per_request_spec_decode_metrics", "performance_mode",
    "pipeline_parallel_size", "pooler_config", "prefill_context_parallel_size",
    "prefill_schedule_interval", "prefix_cache_retention_interval",
    "prefix_caching_hash_algo", "prefix_match_unit", "profiler_config",
    "pt_load_map_location", "quantization", "quantization_config", "ray_workers_use_nsight",
    "reasoning_config", "reasoning_parser", "reasoning_parser_plugin",
    "renderer_num_workers", "replayssm_buffer_len", "return_sampling_mask", "revision",
    "runner", "safetensors_load_strategy", "safetensors_prefetch_block_size",
    "safetensors_prefetch_num_threads", "scheduler_cls", "scheduler_reserve_full_isl",
    "scheduling_policy", "seed", "served_model_name", "show_hidden_metrics_for_version",
    "shutdown_timeout", "skip_mm_profiling", "skip_tokenizer_init", "sleep_mode_backend",
    "sleep_mode_offload_cudagraph", "sleep_preserve_parameter_names",
    "sparse_indexer_topk_backend", "spec_method", "spec_model", "spec_tokens",
    "specialize_active_lora", "speculative_config", "stream_interval",
    "structured_outputs_config", "swa_bounded_replay", "tensor_parallel_size", "tokenizer",
    "tokenizer_mode", "tokenizer_revision", "tokens_only", "trust_remote_code",
    "ubatch_size", "use_fp64_gumbel", "use_replayssm", "use_tqdm_on_load",
    "video_pruning_method", "video_pruning_rate", "watchdog_config", "watermark",
    "watermark_config", "weight_transfer_config", "worker_cls", "worker_extension_cls",
})


#: vllm.SamplingParams
VLLM_SAMPLING: frozenset[str] = frozenset({
    "allowed_token_ids", "bad_words", "detokenize", "extra_args", "flat_logprobs",
    "frequency_penalty", "ignore_eos", "include_stop_str_in_output", "logit_bias",
    "logprob_token_ids", "logprobs", "max_tokens", "min_p", "min_tokens", "n",
    "output_kind", "output_text_buffer_length", "presence_penalty", "prompt_logprob_start",
    "prompt_logprob_token_ids", "prompt_logprobs", "repetition_detection",
    "repetition_penalty", "routed_experts_prompt_start", "seed", "skip_clone",
    "skip_reading_prefix_cache", "skip_special_tokens", "spaces_between_special_tokens",
    "stop", "stop_token_ids", "stream_interval", "structured_outputs", "temperature",
    "thinking_token_budget", "top_k", "top_p", "trace_decode_token_ids", "watermarking",
})


#: tensorrt_llm TrtLlmArgs (the LLM API's arguments)
TENSORRT_LLM_ARGS: frozenset[str] = frozenset({
    "backend", "batched_logits_processor", "batching_type", "build_config",
    "cache_transceiver_config", "calib_config", "context_parallel_size", "cp_config",
    "decoding_config", "dtype", "embedding_parallel_mode", "enable_attention_dp",
    "enable_build_cache", "enable_chunked_prefill", "enable_lora", "enable_prompt_adapter",
    "enable_tqdm", "extended_runtime_perf_knob_config",
    "fail_fast_on_attention_window_too_large", "fast_build", "gather_generation_logits",
    "gpus_per_node", "guided_decoding_backend", "iter_stats_max_iterations",
    "kv_cache_config", "load_format", "lora_config", "max_batch_size", "max_beam_width",
    "max_input_len", "max_num_tokens", "max_prompt_adapter_token", "max_seq_len", "model",
    "moe_cluster_parallel_size", "moe_expert_parallel_size", "moe_tensor_parallel_size",
    "mpi_session", "normalize_log_probs", "num_postprocess_workers", "otlp_traces_endpoint",
    "peft_cache_config", "pipeline_parallel_size", "postprocess_tokenizer_dir",
    "quant_config", "reasoning_parser", "request_stats_max_iterations",
    "return_perf_metrics", "revision", "scheduler_config", "skip_tokenizer_init",
    "speculative_config", "tensor_parallel_size", "tokenizer", "tokenizer_mode",
    "tokenizer_revision", "trust_remote_code", "workspace",
})


#: tensorrt_llm.SamplingParams
TENSORRT_SAMPLING: frozenset[str] = frozenset({
    "add_special_tokens", "additional_model_outputs", "apply_batched_logits_processor",
    "bad", "bad_token_ids", "beam_search_diversity_rate", "beam_width_array", "best_of",
    "detokenize", "early_stopping", "embedding_bias", "end_id", "exclude_input_from_output",
    "frequency_penalty", "guided_decoding", "ignore_eos", "include_stop_str_in_output",
    "length_penalty", "logits_processor", "logprobs", "lookahead_config", "max_tokens",
    "min_p", "min_tokens", "n", "no_repeat_ngram_size", "pad_id", "presence_penalty",
    "prompt_logprobs", "repetition_penalty", "return_context_logits",
    "return_encoder_output", "return_generation_logits", "return_perf_metrics", "seed",
    "skip_special_tokens", "spaces_between_special_tokens", "stop", "stop_token_ids",
    "temperature", "top_k", "top_p", "top_p_decay", "top_p_min", "top_p_reset_ids",
    "truncate_prompt_tokens", "use_beam_search",
})
