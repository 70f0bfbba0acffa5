"""From validated prices to a trained LSTM: windows and target transform, the model, the trainer."""
