#include "tokenizer/bpe.h"

#include <algorithm>
#include <cstdio>

#include "mambacpp/error.h"
#include "tokenizer/utf8.h"

namespace mambacpp::tokenizer_detail {

void BpeModel::MergeTable::reserve(std::size_t count) {
  // A load factor of at most one half keeps probe sequences short.
  std::size_t capacity = 16;
  shift_ = 60;
  while (capacity < 2 * count) {
    capacity *= 2;
    --shift_;
  }
  keys_.assign(capacity, kEmpty);
  merges_.assign(capacity, Merge{0, 0});
  size_ = 0;
}

void BpeModel::MergeTable::insert_or_assign(uint64_t key, Merge merge) {
  if (2 * (size_ + 1) > keys_.size()) {
    // Grow and re-insert, which only happens when reserve() was given too small a count.
    std::vector<uint64_t> old_keys = std::move(keys_);
    std::vector<Merge> old_merges = std::move(merges_);
    reserve(old_keys.size());
    for (std::size_t i = 0; i < old_keys.size(); ++i) {
      if (old_keys[i] != kEmpty) insert_or_assign(old_keys[i], old_merges[i]);
    }
  }
  const std::size_t mask = keys_.size() - 1;
  for (std::size_t slot = slot_of(key);; slot = (slot + 1) & mask) {
    if (keys_[slot] == key) {
      merges_[slot] = merge;
      return;
    }
    if (keys_[slot] == kEmpty) {
      keys_[slot] = key;
      merges_[slot] = merge;
      ++size_;
      return;
    }
  }
}

const BpeModel::Merge* BpeModel::MergeTable::find(uint64_t key) const {
  if (keys_.empty()) return nullptr;
  const std::size_t mask = keys_.size() - 1;
  for (std::size_t slot = slot_of(key);; slot = (slot + 1) & mask) {
    if (keys_[slot] == key) return &merges_[slot];
    if (keys_[slot] == kEmpty) return nullptr;
  }
}

BpeModel::BpeModel(BpeConfig config, std::string_view source_name)
    : vocab_(std::move(config.vocab)),
      unk_token_(std::move(config.unk_token)),
      continuing_subword_prefix_(std::move(config.continuing_subword_prefix)),
      end_of_word_suffix_(std::move(config.end_of_word_suffix)),
      fuse_unk_(config.fuse_unk),
      byte_fallback_(config.byte_fallback),
      ignore_merges_(config.ignore_merges) {
  const std::size_t prefix_length =
      continuing_subword_prefix_ ? continuing_subword_prefix_->size() : 0;
  auto lookup = [&](const std::string& token) {
    const auto it = vocab_.find(token);
    if (it == vocab_.end()) {
      throw Error(std::string(source_name) + ": BPE merge uses token \"" + token +
                  "\", which is not in model.vocab");
    }
    return it->second;
  };
  merges_.reserve(config.merges.size());
  for (std::size_t rank = 0; rank < config.merges.size(); ++rank) {
    const auto& [left, right] = config.merges[rank];
    const int32_t left_id = lookup(left);
    const int32_t right_id = lookup(right);
    if (right.size() < prefix_length) {
      throw Error(std::string(source_name) + ": BPE merge right part \"" + right +
                  "\" is shorter than continuing_subword_prefix");
    }
    const int32_t merged_id = lookup(left + right.substr(prefix_length));
    // A repeated pair keeps its last rank, as in Hugging Face tokenizers.
    merges_.insert_or_assign(pair_key(left_id, right_id),
                             Merge{static_cast<uint32_t>(rank), merged_id});
  }
  if (unk_token_) {
    const auto it = vocab_.find(*unk_token_);
    if (it != vocab_.end()) unk_id_ = it->second;
  }

  direct_character_ids_.assign(kDirectCharacters, -1);
  std::string text;
  for (char32_t cp = 0; cp < kDirectCharacters; ++cp) {
    text.clear();
    append_utf8(text, cp);
    const auto it = vocab_.find(text);
    if (it != vocab_.end()) direct_character_ids_[cp] = it->second;
  }
}

int32_t BpeModel::single_character_id(std::string_view text, char32_t cp) const {
  if (cp < kDirectCharacters) return direct_character_ids_[cp];
  const auto it = vocab_.find(text);
  return it == vocab_.end() ? -1 : it->second;
}

void BpeModel::split_into_symbols(std::string_view word, std::vector<Symbol>& symbols) const {
  symbols.clear();
  // An unknown character waits here so that fuse_unk can join it with the next one.
  bool has_pending_unk = false;
  uint32_t pending_unk_length = 0;
  std::string piece;
  auto push = [&](int32_t id, std::size_t byte_length) {
    const auto index = static_cast<int32_t>(symbols.size());
    symbols.push_back(Symbol{id, index - 1, index + 1, static_cast<uint32_t>(byte_length)});
  };

  std::size_t pos = 0;
  while (pos < word.size()) {
    const std::size_t length = utf8_sequence_length(static_cast<unsigned char>(word[pos]));
    const bool is_first = pos == 0;
    const bool is_last = pos + length >= word.size();
    std::string_view lookup_text = word.substr(pos, length);
    const bool affixed = (!is_first && continuing_subword_prefix_) || (is_last && end_of_word_suffix_);
    int32_t id = -1;
    if (affixed) {
      piece.clear();
      if (!is_first && continuing_subword_prefix_) piece += *continuing_subword_prefix_;
      piece += lookup_text;
      if (is_last && end_of_word_suffix_) piece += *end_of_word_suffix_;
      lookup_text = piece;
      const auto it = vocab_.find(lookup_text);
      if (it != vocab_.end()) id = it->second;
    } else {
      id = single_character_id(lookup_text, decode_code_point(word, pos));
    }
    pos += length;

    if (id >= 0) {
      if (has_pending_unk) {
        push(*unk_id_, pending_unk_length);
        has_pending_unk = false;
      }
      push(id, length);
      continue;
    }
    if (byte_fallback_) {
      // Hugging Face falls back to <0xXX> tokens for the bytes of the looked-up text (prefix
      // and suffix included), and only when every one of them exists.
      std::vector<int32_t> byte_ids;
      for (char c : lookup_text) {
        char name[8];
        std::snprintf(name, sizeof(name), "<0x%02X>", static_cast<unsigned char>(c));
        const auto byte_it = vocab_.find(std::string_view(name));
        if (byte_it == vocab_.end()) {
          byte_ids.clear();
          break;
        }
        byte_ids.push_back(byte_it->second);
      }
      if (!byte_ids.empty()) {
        for (int32_t id : byte_ids) push(id, 1);
        continue;
      }
    }
    if (unk_token_) {
      if (!unk_id_) {
        throw Error("BPE unk_token \"" + *unk_token_ + "\" is not in model.vocab");
      }
      if (has_pending_unk && fuse_unk_) {
        pending_unk_length += static_cast<uint32_t>(length);
      } else {
        if (has_pending_unk) push(*unk_id_, pending_unk_length);
        has_pending_unk = true;
        pending_unk_length = static_cast<uint32_t>(length);
      }
    }
    // Without an unk_token, Hugging Face drops a character that is not in the vocabulary.
  }
  if (has_pending_unk) push(*unk_id_, pending_unk_length);
  if (!symbols.empty()) symbols.back().next = -1;
}

void BpeModel::merge_symbols(std::vector<Symbol>& symbols) const {
  struct Candidate {
    uint32_t rank;
    int32_t position;
    int32_t new_id;
  };
  // Min-heap on (rank, position): the lowest rank first, the leftmost pair on ties.
  auto later = [](const Candidate& a, const Candidate& b) {
    return a.rank != b.rank ? a.rank > b.rank : a.position > b.position;
  };
  std::vector<Candidate> heap;
  auto add_candidate = [&](int32_t position) {
    const int32_t next = symbols[position].next;
    if (next < 0) return;
    const Merge* merge = merges_.find(pair_key(symbols[position].id, symbols[next].id));
    if (merge == nullptr) return;
    heap.push_back(Candidate{merge->rank, position, merge->new_id});
    std::push_heap(heap.begin(), heap.end(), later);
  };
  for (int32_t i = 0; i + 1 < static_cast<int32_t>(symbols.size()); ++i) add_candidate(i);

  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), later);
    const Candidate top = heap.back();
    heap.pop_back();
    Symbol& left = symbols[top.position];
    if (left.byte_length == 0 || left.next < 0) continue;  // merged away or now the last
    Symbol& right = symbols[left.next];
    const Merge* merge = merges_.find(pair_key(left.id, right.id));
    if (merge == nullptr || merge->new_id != top.new_id) continue;  // stale entry

    left.id = top.new_id;
    left.byte_length += right.byte_length;
    right.byte_length = 0;
    left.next = right.next;
    if (right.next >= 0) symbols[right.next].prev = top.position;
    if (left.prev >= 0) add_candidate(left.prev);
    add_candidate(top.position);
  }
}

void BpeModel::tokenize(std::string_view word, std::vector<int32_t>& out) const {
  if (word.empty()) return;
  if (ignore_merges_) {
    const auto it = vocab_.find(word);
    if (it != vocab_.end()) {
      out.push_back(it->second);
      return;
    }
  }
  thread_local std::vector<Symbol> symbols;
  split_into_symbols(word, symbols);
  merge_symbols(symbols);
  for (const Symbol& symbol : symbols) {
    if (symbol.byte_length != 0) out.push_back(symbol.id);
  }
}

}  // namespace mambacpp::tokenizer_detail
