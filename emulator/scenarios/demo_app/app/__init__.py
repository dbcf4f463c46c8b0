"""The demo application the emulator's demo scenario builds and deploys."""
