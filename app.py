"""START Studio web app (Gradio). The live demo lands with issue 5; the library and CLI work now:

    python -m startui run "What is the sum of all primes below 1000? Use Python to check."
"""

if __name__ == "__main__":
    print("The web UI comes later; for now use: python -m startui run \"your question\"")
