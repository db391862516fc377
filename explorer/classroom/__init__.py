"""The classroom: quizzes on the analysis (quiz) and the class challenge with its leaderboard
(challenge).

Never imports: streamlit or ui.
"""
