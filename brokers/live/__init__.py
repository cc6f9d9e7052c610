"""Live feeds: websocket subscribers to topics, served by shared per-partition tails."""
